import * as path from 'node:path';
import * as vscode from 'vscode';
import { engineName } from '../core/engine/engine';
import type { PublishedPort } from '../core/sandbox/records';
import type { ChangedFile } from '../core/git/worktrees';
import { progressSummary } from '../core/agents/progress';
import type { AgentProgress } from '../core/agents/progress';
import { COMMAND } from './ids';
import type { SandboxModel, SandboxView } from './model';

export type TreeNode = SandboxNode | SummaryNode | ChangeNode | PortNode | ExitNode;

export class SandboxNode {
  readonly kind = 'sandbox';
  constructor(
    readonly sandbox: SandboxView,
    readonly progress?: AgentProgress,
  ) {}

  getTreeItem(): vscode.TreeItem {
    const s = this.sandbox;
    const item = new vscode.TreeItem(s.name, vscode.TreeItemCollapsibleState.Collapsed);
    item.id = `sandbox:${s.name}`;
    // The state first: a narrow side bar cuts the description from the end.
    // An agent preset's step ("editing src/app.ts · turn 3") says more than its branch.
    item.description = [stateLabel(s), s.agent, s.waiting ? 'waits for you' : this.progress ? progressSummary(this.progress) : s.branch].filter(Boolean).join(' · ');
    item.iconPath = stateIcon(s);
    // Matched by package.json's menus with regular expressions: each part is added at the end.
    item.contextValue = `sandbox.${s.pending ? 'building' : s.state}${s.containerId ? '.container' : ''}${s.interactive ? '.interactive' : ''}`;
    item.tooltip = tooltip(s);
    return item;
  }

  getChildren(): TreeNode[] {
    const s = this.sandbox;
    const children: TreeNode[] = s.changes.length > 0 ? [new SummaryNode(s), ...s.changes.map((change) => new ChangeNode(s, change))] : [];
    children.push(...s.ports.map((port) => new PortNode(s, port)));
    if (s.exitCode !== undefined) children.push(new ExitNode(s));
    return children;
  }
}

/** Files changed, lines added and removed: the row that opens the review and offers Sync Back. */
export class SummaryNode {
  readonly kind = 'summary';
  constructor(readonly sandbox: SandboxView) {}

  getTreeItem(): vscode.TreeItem {
    const item = new vscode.TreeItem(changeSummary(this.sandbox.changes));
    item.id = `summary:${this.sandbox.name}`;
    item.description = lineCounts(this.sandbox.changes);
    item.iconPath = new vscode.ThemeIcon('diff-multiple');
    item.contextValue = 'summary';
    item.tooltip = 'Review the changes against the base, committed or not';
    item.command = { command: COMMAND.reviewChanges, title: 'Review Changes', arguments: [this.sandbox.name] };
    return item;
  }
}

export function changeSummary(changes: ChangedFile[]): string {
  return `${changes.length} file${changes.length === 1 ? '' : 's'} changed`;
}

/** "+12 −3", as git counts lines; binary files count none. */
export function lineCounts(changes: ChangedFile[]): string {
  const added = changes.reduce((sum, c) => sum + (c.added ?? 0), 0);
  const removed = changes.reduce((sum, c) => sum + (c.removed ?? 0), 0);
  return `+${added} −${removed}`;
}

export class ChangeNode {
  readonly kind = 'change';
  constructor(
    readonly sandbox: SandboxView,
    readonly change: ChangedFile,
  ) {}

  getTreeItem(): vscode.TreeItem {
    const uri = vscode.Uri.file(path.join(this.sandbox.worktree, this.change.path));
    const item = new vscode.TreeItem(uri, vscode.TreeItemCollapsibleState.None);
    item.id = `change:${this.sandbox.name}:${this.change.path}`;
    item.label = path.basename(this.change.path);
    const folder = path.dirname(this.change.path);
    const lines = this.change.added === undefined ? 'binary' : `+${this.change.added} −${this.change.removed}`;
    item.description = `${folder === '.' ? '' : `${folder} · `}${this.change.status}${this.change.from ? ` from ${this.change.from}` : ''} · ${lines}`;
    item.contextValue = 'change';
    item.command = { command: COMMAND.openChangedFile, title: 'Open Changes', arguments: [this] };
    return item;
  }
}

export class PortNode {
  readonly kind = 'port';
  constructor(
    readonly sandbox: SandboxView,
    readonly port: PublishedPort,
  ) {}

  get url(): string {
    const host = this.port.hostIp === '0.0.0.0' || this.port.hostIp === '' ? '127.0.0.1' : this.port.hostIp;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port.hostPort}`;
  }

  getTreeItem(): vscode.TreeItem {
    const item = new vscode.TreeItem(`${this.port.containerPort}/${this.port.protocol} → ${this.port.hostIp}:${this.port.hostPort}`);
    item.id = `port:${this.sandbox.name}:${this.port.containerPort}/${this.port.protocol}:${this.port.hostPort}`;
    item.iconPath = new vscode.ThemeIcon('plug');
    item.contextValue = 'port';
    item.tooltip = `Open ${this.url}`;
    item.command = { command: COMMAND.openPort, title: 'Open in Browser', arguments: [this] };
    return item;
  }
}

export class ExitNode {
  readonly kind = 'exit';
  constructor(readonly sandbox: SandboxView) {}

  getTreeItem(): vscode.TreeItem {
    const code = this.sandbox.exitCode ?? 0;
    const how = exitLabel(this.sandbox);
    const item = new vscode.TreeItem(code === 0 ? 'Agent finished (exit 0)' : how === 'stopped' ? `Agent stopped (exit ${code})` : how === 'out of memory' ? `Agent killed: out of memory (exit ${code})` : `Agent failed (exit ${code})`);
    item.id = `exit:${this.sandbox.name}`;
    item.iconPath = code === 0 ? new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')) : how === 'stopped' ? new vscode.ThemeIcon('debug-stop') : new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed'));
    item.contextValue = 'exit';
    return item;
  }
}

export class SandboxTreeProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly subscription: vscode.Disposable;

  private readonly progressSubscription: vscode.Disposable | undefined;

  constructor(
    private readonly model: SandboxModel,
    private readonly progress?: { progress(name: string): AgentProgress | undefined; onDidChangeProgress: vscode.Event<string> },
  ) {
    this.subscription = model.onDidChange(() => this.emitter.fire(undefined));
    this.progressSubscription = progress?.onDidChangeProgress(() => this.emitter.fire(undefined));
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    return node.getTreeItem();
  }

  getChildren(node?: TreeNode): TreeNode[] {
    if (!node) return this.model.list.map((s) => new SandboxNode(s, this.progress?.progress(s.name)));
    return node.kind === 'sandbox' ? node.getChildren() : [];
  }

  dispose(): void {
    this.subscription.dispose();
    this.progressSubscription?.dispose();
    this.emitter.dispose();
  }
}

/** How an agent ended: SIGTERM (143) and SIGKILL (137) are what a stop sends, not failures of the agent. */
function exitLabel(s: SandboxView): string {
  if (s.oomKilled) return 'out of memory';
  if (s.exitCode === 0) return 'finished';
  if (s.exitCode === 143 || s.exitCode === 137) return 'stopped';
  return `failed (${s.exitCode ?? '?'})`;
}

export function stateLabel(s: SandboxView): string {
  if (s.pending) return 'building';
  if (s.state === 'exited') return exitLabel(s);
  if (s.state === 'missing') return 'container missing';
  return s.state;
}

function stateIcon(s: SandboxView): vscode.ThemeIcon {
  if (s.pending) return new vscode.ThemeIcon('loading~spin');
  switch (s.state) {
    case 'running':
      return new vscode.ThemeIcon('play-circle', new vscode.ThemeColor('testing.iconQueued'));
    case 'exited':
      if (s.exitCode === 0) return new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed'));
      if (exitLabel(s) === 'stopped') return new vscode.ThemeIcon('debug-stop');
      return new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed'));
    case 'paused':
      return new vscode.ThemeIcon('debug-pause');
    case 'missing':
    case 'dead':
      return new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
    default:
      return new vscode.ThemeIcon('circle-outline');
  }
}

function tooltip(s: SandboxView): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown(`**${s.name}** — ${stateLabel(s)}\n\n`);
  const rows: Array<[string, string | undefined]> = [
    ['Agent', s.agent],
    ['Task', s.task || undefined],
    ['Branch', s.branch],
    ['Engine', s.engine ? engineName(s.engine) : undefined],
    ['Image', s.image],
    ['Limits', s.limits ? `${s.limits.cpus} CPU, ${formatBytes(s.limits.memoryBytes)} memory, ${s.limits.pids} processes` : undefined],
    ['Network', s.network === 'allowlist' ? `allowlist: ${s.allow?.length ? s.allow.join(', ') : 'nothing'}` : s.network],
    ['Ports', s.ports.map((p) => `${p.hostIp}:${p.hostPort}→${p.containerPort}/${p.protocol}`).join(', ') || undefined],
    ['Worktree', s.worktree || undefined],
    ['Container', s.containerId?.slice(0, 12)],
  ];
  for (const [key, value] of rows) if (value) md.appendMarkdown(`${key}: \`${value.replace(/`/g, "'")}\`  \n`);
  if (s.importError) md.appendMarkdown(`\n$(warning) ${s.importError.replace(/[\\`*_{}[\]()#+\-.!<>|]/g, '\\$&')}\n`);
  return md;
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}
