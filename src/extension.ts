import * as path from 'node:path';
import * as vscode from 'vscode';
import { engineName } from './core/engine/engine';
import { errorMessage } from './core/errors';
import type { HostPolicy } from './core/sandbox/policy';
import { AgentTerminals } from './ui/agentTerminal';
import { BaseContentProvider } from './ui/baseContent';
import { registerCommands } from './ui/commands/table';
import { ConfigDiagnostics } from './ui/diagnostics';
import { showError } from './ui/errors';
import { BASE_SCHEME, VIEW_ID } from './ui/ids';
import { LogChannels } from './ui/logChannels';
import { WaitingNotifier } from './ui/waiting';
import { userPolicy } from './ui/policy';
import { SandboxModel } from './ui/model';
import { agentStuckAfterSetting, configPathSetting, engineHostSetting, engineSetting, SETTINGS_SECTION } from './ui/settings';
import { SandboxStatusBar } from './ui/statusBar';
import { SandboxTreeProvider } from './ui/tree';

/** What the extension hands to other extensions and to its tests. */
export interface AgentSandboxesApi {
  model: SandboxModel;
  logs: LogChannels;
  /** The Attach to Agent terminals of this window, and what each attachment received. */
  agentTerminals: AgentTerminals;
  tree: SandboxTreeProvider;
  /** How long activate() took, and when the view first had its answer (engine calls included), in ms. */
  timings: { activateMs: number; firstLoadMs?: number };
}

/**
 * The one place that builds everything. Activation makes no engine call and waits for none: the model opens
 * in the background and the view fills in when it answers.
 */
export function activate(context: vscode.ExtensionContext): AgentSandboxesApi {
  const log = vscode.window.createOutputChannel('Agent Sandboxes', { log: true });
  context.subscriptions.push(log);
  try {
    return wire(context, log);
  } catch (error) {
    // VS Code does not tell the user when an extension fails to activate: say it, then fail.
    void showError(error, vscode, log, undefined, 'Agent Sandboxes failed to start: ');
    log.error(`Activation failed: ${errorMessage(error)}`);
    throw error;
  }
}

function wire(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): AgentSandboxesApi {
  const started = performance.now();
  const settings = () => vscode.workspace.getConfiguration(SETTINGS_SECTION, folder);
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const configPath = () => configPathSetting(settings());
  const configUri = () => (folder ? vscode.Uri.file(path.resolve(folder.fsPath, configPath())) : undefined);
  // The settings win over sandbox.toml's engine and engine_host when either names something (see effectiveSelection).
  // The address only as the user's settings give it: one in a workspace's .vscode/settings.json travels with the
  // repository, and the engine receives its build context, task and secrets.
  const engineSettings = () => ({
    engine: engineSetting(settings()),
    host: engineHostSetting(settings()),
  });

  // Read from the user's (machine) settings only: workspace settings travel with the repository.
  const policy = (): HostPolicy => userPolicy(settings(), context.secrets);

  const model = new SandboxModel(folder, engineSettings, configPath, log, policy);
  const logs = new LogChannels(model, log, () => agentStuckAfterSetting(settings()));
  const tree = new SandboxTreeProvider(model, logs);
  const agentTerminals = new AgentTerminals();
  const view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: tree, showCollapseAll: true });
  const buildOutput = vscode.window.createOutputChannel('Agent Sandboxes: Build');
  context.subscriptions.push(
    model,
    logs,
    agentTerminals,
    tree,
    view,
    buildOutput,
    new SandboxStatusBar(model),
    new WaitingNotifier(model),
    new ConfigDiagnostics(model, configUri),
    vscode.workspace.registerTextDocumentContentProvider(BASE_SCHEME, new BaseContentProvider(model)),
    ...registerCommands({ model, logs, agentTerminals, buildOutput, log, folder, secrets: context.secrets, settings }),
    // The view's title says which engine its sandboxes run on.
    model.onDidChange(() => {
      view.description = model.engineKind ? engineName(model.engineKind) : undefined;
    }),
    vscode.workspace.onDidSaveTextDocument((document) => {
      if (document.uri.fsPath === configUri()?.fsPath) void model.open();
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void model.open()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(SETTINGS_SECTION)) void model.open();
    }),
  );
  const timings: AgentSandboxesApi['timings'] = { activateMs: 0 };
  void model.open().then(() => {
    timings.firstLoadMs = performance.now() - started;
    log.info(`The view has its first answer after ${timings.firstLoadMs.toFixed(0)} ms (state: ${model.state})`);
    return logs.attachRunning();
  });
  timings.activateMs = performance.now() - started;
  log.info(`Agent Sandboxes activated in ${timings.activateMs.toFixed(1)} ms for ${folder?.fsPath ?? 'no folder'}`);
  return { model, logs, agentTerminals, tree, timings };
}

export function deactivate(): void {}
