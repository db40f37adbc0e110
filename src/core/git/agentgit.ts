/**
 * The agent's private git directory, as the host reads it: data the agent wrote, never a path to follow or a
 * repository for host git to open. Its HEAD and refs are read by hand (regular files only, no links, a size
 * cap); its objects are copied the same way into a quarantine repository of the host's making and reach the
 * host's object store only through `git index-pack --strict`, which names every object by its bytes.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GitError } from '../errors';
import { gitRaw, hardenedArgs } from './git';
import { copySmallUntrustedFileSync, copyUntrustedFile, listUntrustedDir, readUntrustedFile, UntrustedFileError } from '../isolation/untrusted';

/** HEAD and a loose ref hold one line; packed-refs one line a ref. */
const MAX_REF_BYTES = 4096;
const MAX_PACKED_REFS_BYTES = 4 * 1024 * 1024;
/** Bounds on what one import copies of the agent's objects. */
export const IMPORT_LIMITS = { objects: 200_000, packs: 64, bytes: 2 * 1024 ** 3 };

const OBJECT_ID = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** The agent's git directory held something the host will not read: a clear error about that one sandbox. */
export function agentGitError(sandbox: string, what: string): GitError {
  return new GitError(
    `The agent's git directory in sandbox "${sandbox}" is not usable: ${what}. Its commits were not imported.`,
    'The agent made it so (the host reads only regular files there, never through a link). Inside the sandbox, `git status` and `git log` show its state; remove the sandbox if it is broken.',
    [{ do: 'remove-sandbox', sandbox }],
  );
}

/** A file the host would not read there, as that error; any other error as it is. */
function asAgentGitError(sandbox: string, error: unknown): unknown {
  return error instanceof UntrustedFileError ? agentGitError(sandbox, error.message) : error;
}

function untrusted<T>(sandbox: string, read: Promise<T>): Promise<T> {
  return read.catch((error) => {
    throw asAgentGitError(sandbox, error);
  });
}

async function readRefFile(sandbox: string, dir: string, file: string, max: number): Promise<string> {
  return ((await untrusted(sandbox, readUntrustedFile(dir, file, max))) ?? Buffer.alloc(0)).toString('utf8');
}

/**
 * The commit the agent's HEAD names: a symbolic ref to a branch (loose or packed) or a detached object id.
 * Undefined where it names nothing (a branch not made yet); a GitError where a file on the way is not a plain
 * file of a sane size.
 */
export async function readAgentHead(privateGitDir: string, sandbox = path.basename(path.dirname(privateGitDir))): Promise<string | undefined> {
  const head = (await readRefFile(sandbox, privateGitDir, 'HEAD', MAX_REF_BYTES)).trim();
  if (OBJECT_ID.test(head)) return head;
  const match = /^ref: (refs\/heads\/[^\0\s]+)$/.exec(head);
  if (!match || match[1].split('/').some((part) => part === '' || part === '.' || part === '..')) return undefined;
  const loose = (await readRefFile(sandbox, privateGitDir, match[1], MAX_REF_BYTES)).trim();
  if (OBJECT_ID.test(loose)) return loose;
  const packed = await readRefFile(sandbox, privateGitDir, 'packed-refs', MAX_PACKED_REFS_BYTES);
  for (const line of packed.split('\n')) {
    const [id, ref] = line.split(' ');
    if (ref === match[1] && OBJECT_ID.test(id)) return id;
  }
  return undefined;
}

/**
 * The environment for host git: the user's, without anything that points git at other objects, grafts, a
 * shallow file or replace refs, and with replace refs off.
 */
export function trustedGitEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [
    'GIT_DIR',
    'GIT_WORK_TREE',
    'GIT_COMMON_DIR',
    'GIT_INDEX_FILE',
    'GIT_OBJECT_DIRECTORY',
    'GIT_ALTERNATE_OBJECT_DIRECTORIES',
    'GIT_QUARANTINE_PATH',
    'GIT_GRAFT_FILE',
    'GIT_SHALLOW_FILE',
    'GIT_REPLACE_REF_BASE',
    'GIT_NAMESPACE',
  ]) delete env[name];
  return { ...env, GIT_NO_REPLACE_OBJECTS: '1', ...extra };
}

/** What host git reads the quarantine with: nothing of the agent's but object bytes. */
const QUARANTINE_CONFIG = ['core.commitGraph=false', 'core.multiPackIndex=false', 'core.repositoryFormatVersion=0', 'gc.auto=0'];

/**
 * Brings the objects that `tip` needs and the host lacks from the agent's git directory into the host's object
 * store (`commonDir/objects`), checked: it throws a GitError, and stores nothing, unless every object is what its
 * name says and `tip` is a commit whose history and trees are complete.
 *
 * The agent's `objects/??/*` files and `objects/pack/*.pack` are copied (regular files only, never through a
 * link, bounded) into a temporary bare repository whose only alternate is the host's own object store and
 * which has no commit-graph, multi-pack index, grafts or replace refs; its shallow file is the host's. From
 * there `git pack-objects` packs what `tip` needs beyond the host's refs, and the host takes that pack with
 * `git index-pack --strict`, which computes each object's id from its bytes and dies on a broken link.
 */
export async function importAgentObjects(options: { root: string; commonDir: string; privateGitDir: string; sandbox: string; tip: string }): Promise<void> {
  const { root, commonDir, privateGitDir, sandbox, tip } = options;
  const env = trustedGitEnv();
  const [loose, refs] = await Promise.all([
    looseObjectIds(privateGitDir, sandbox),
    runGit(root, ['for-each-ref', '--format=%(objectname)'], env).then((out) => [...new Set(out.toString('utf8').split('\n').filter(Boolean))]),
  ]);
  // What the host has is the host's own: never copied, so never read from the agent.
  const missing = new Set(
    (await runGit(root, ['cat-file', '--batch-check=%(objectname)'], env, { input: `${[tip, ...loose].join('\n')}\n` }))
      .toString('utf8')
      .split('\n')
      .filter((line) => line.endsWith(' missing'))
      .map((line) => line.slice(0, -' missing'.length)),
  );
  if (missing.has(tip)) {
    await withQuarantine(commonDir, async (quarantine) => {
      const qGit: QuarantineGit = (args, io = {}) => runGit(quarantine, [`--git-dir=${quarantine}`, ...QUARANTINE_CONFIG.flatMap((c) => ['-c', c]), ...args], env, { label: args[0], ...io });
      await copyAgentObjects(privateGitDir, quarantine, sandbox, loose.filter((id) => missing.has(id)), qGit);
      const pack = path.join(quarantine, 'transfer.pack');
      await qGit(['pack-objects', '--revs', '--stdout', '--quiet', '--delta-base-offset'], { stdout: pack, input: [tip, ...refs.map((r) => `^${r}`), ''].join('\n') }).catch((error: Error) => {
        throw new GitError(
          `The agent's commit ${tip} in sandbox "${sandbox}" was not imported: its objects are missing or broken (${firstLine(error.message)}).`,
          'Nothing was stored. If the agent is still committing, look again in a moment.',
        );
      });
      // A pack's header: "PACK", a version, then the number of objects. None: the host has them all already.
      const header = Buffer.alloc(12);
      const handle = await fs.open(pack, 'r');
      await handle.read(header, 0, 12, 0).finally(() => handle.close());
      if (header.readUInt32BE(8) === 0) return;
      await runGit(root, ['index-pack', '--strict', '--stdin'], env, { stdin: pack }).catch((error: Error) => {
        throw new GitError(
          `The agent's commit ${tip} in sandbox "${sandbox}" was not imported: its objects failed git's checks (${firstLine(error.message)}).`,
          'An object whose bytes do not match its name, or a tree or commit naming an object that is not there, is refused; nothing was stored. If the agent is still committing, look again in a moment.',
        );
      });
    });
  }
  const [type, connected] = await Promise.all([
    gitRaw(root, ['cat-file', '-t', tip], { env }),
    // Complete: every commit, tree and blob from the tip down to what the host's refs already hold.
    gitRaw(root, ['rev-list', '--objects', '--missing=error', '--quiet', tip, '--not', '--all'], { env }),
  ]);
  const kind = type.stdout.toString('utf8').trim();
  if (kind !== 'commit') throw agentGitError(sandbox, `its HEAD names ${tip}, which is ${kind ? `a ${kind}` : 'no object the host could take'}, not a commit`);
  if (connected.code !== 0) {
    throw new GitError(
      `The agent's commit ${tip} in sandbox "${sandbox}" was not imported: its history is incomplete (${firstLine(connected.stderr)}).`,
      'If the agent is still committing, look again in a moment.',
    );
  }
}

function firstLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines.find((l) => /^(error|fatal)/.test(l)) ?? lines[0] ?? '').trim();
}

/** The ids of the agent's loose objects, from the names of its `objects/??/*` files (nothing is read yet). */
async function looseObjectIds(privateGitDir: string, sandbox: string): Promise<string[]> {
  const ids: string[] = [];
  for (const dir of (await listUntrustedDir(privateGitDir, 'objects')) ?? []) {
    if (!dir.dir || !/^[0-9a-f]{2}$/.test(dir.name)) continue;
    for (const file of (await listUntrustedDir(privateGitDir, `objects/${dir.name}`)) ?? []) {
      if (!/^[0-9a-f]{38}$/.test(file.name)) continue;
      ids.push(dir.name + file.name);
      if (ids.length > IMPORT_LIMITS.objects) throw agentGitError(sandbox, `it holds more than the ${IMPORT_LIMITS.objects} loose objects one import copies`);
    }
  }
  return ids;
}

/** Copies the agent's loose objects `ids` and its packs into the quarantine, within IMPORT_LIMITS. */
async function copyAgentObjects(privateGitDir: string, quarantine: string, sandbox: string, ids: string[], qGit: QuarantineGit): Promise<void> {
  const objects = path.join(quarantine, 'objects');
  let bytes = 0;
  const copy = async (from: string, to: string) => {
    const size = await untrusted(sandbox, copyUntrustedFile(privateGitDir, from, to, IMPORT_LIMITS.bytes - bytes));
    bytes += size ?? 0;
    return size;
  };
  for (const dir of new Set(ids.map((id) => id.slice(0, 2)))) await fs.mkdir(path.join(objects, dir));
  // Loose objects are small and many: copied synchronously (measured: a trip through the thread pool for each
  // of a copy's system calls tripled an import's time), a large one as a stream, and the event loop let go
  // of every so often.
  for (const [i, id] of ids.entries()) {
    const from = `objects/${id.slice(0, 2)}/${id.slice(2)}`;
    const to = path.join(objects, id.slice(0, 2), id.slice(2));
    let size: number | undefined | 'large';
    try {
      size = copySmallUntrustedFileSync(privateGitDir, from, to, IMPORT_LIMITS.bytes - bytes);
    } catch (error) {
      throw asAgentGitError(sandbox, error);
    }
    if (size === 'large') await copy(from, to);
    else bytes += size ?? 0;
    if (bytes > IMPORT_LIMITS.bytes) throw agentGitError(sandbox, `its objects are more than the ${IMPORT_LIMITS.bytes} bytes one import copies`);
    if (i % 256 === 255) await new Promise((resolve) => setImmediate(resolve));
  }
  const packs = ((await listUntrustedDir(privateGitDir, 'objects/pack')) ?? []).filter((e) => e.name.endsWith('.pack') && !e.name.startsWith('.'));
  if (packs.length > IMPORT_LIMITS.packs) throw agentGitError(sandbox, `it holds more than the ${IMPORT_LIMITS.packs} packs one import copies`);
  for (const [i, entry] of packs.entries()) {
    // Named by the host, indexed by the host: index-pack reads every object and names it by its bytes.
    const target = path.join(objects, 'pack', `agent-${i}.pack`);
    if ((await copy(`objects/pack/${entry.name}`, target)) === undefined) continue;
    // A pack that does not index (truncated, or leaning on objects it lacks) is left out; what the tip needs
    // of it is then missing, which the import reports.
    await qGit(['index-pack', target]).catch(() => fs.rm(target, { force: true }));
  }
}

interface GitIo {
  /** stdin from this file, or `input`. */
  stdin?: string;
  input?: string;
  /** stdout to this new file; otherwise returned. */
  stdout?: string;
  /** The command's name, for its error. */
  label?: string;
}

type QuarantineGit = (args: string[], io?: GitIo) => Promise<Buffer>;

/** A bare repository in a temporary folder, written by hand: the host's objects as its only alternate. */
async function withQuarantine<T>(commonDir: string, work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agent-sandboxes-import-'));
  try {
    await fs.mkdir(path.join(dir, 'objects', 'info'), { recursive: true });
    await fs.mkdir(path.join(dir, 'objects', 'pack'));
    await fs.mkdir(path.join(dir, 'refs'));
    await fs.writeFile(path.join(dir, 'HEAD'), 'ref: refs/heads/quarantine\n');
    await fs.writeFile(path.join(dir, 'config'), '[core]\n\trepositoryformatversion = 0\n\tbare = true\n');
    await fs.writeFile(path.join(dir, 'objects', 'info', 'alternates'), `${alternatesLine(path.join(commonDir, 'objects'))}\n`);
    // A shallow host's history stops where its own shallow file says; the agent's copy is never read.
    await fs.copyFile(path.join(commonDir, 'shallow'), path.join(dir, 'shallow')).catch(() => undefined);
    return await work(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** git with the hardened config; stdin from a file or a string, stdout to a file or returned. */
function runGit(cwd: string, args: string[], env: NodeJS.ProcessEnv, io: GitIo = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    void (async () => {
      const stdinFile = io.stdin ? await fs.open(io.stdin, 'r') : undefined;
      const stdoutFile = io.stdout ? await fs.open(io.stdout, 'wx', 0o600) : undefined;
      const child = spawn('git', hardenedArgs(args), { cwd, env, stdio: [stdinFile ? stdinFile.fd : 'pipe', stdoutFile ? stdoutFile.fd : 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout?.on('data', (d: Buffer) => out.push(d));
      child.stderr?.on('data', (d: Buffer) => err.push(d));
      const closeFiles = () => Promise.all([stdinFile?.close(), stdoutFile?.close()]);
      child.on('error', (error) => void closeFiles().then(() => reject(error)));
      child.on('close', (code) =>
        void closeFiles().then(() =>
          code === 0 ? resolve(Buffer.concat(out)) : reject(new GitError(`git ${io.label ?? args[0]} exited with ${code}: ${Buffer.concat(err).toString('utf8').trim()}`)),
        ),
      );
      if (child.stdin) {
        child.stdin.on('error', () => undefined);
        child.stdin.end(io.input ?? '');
      }
    })().catch(reject);
  });
}

/** A line of objects/info/alternates: C-quoted when the path holds a newline, a quote or a backslash (git 2.11+ reads that). */
function alternatesLine(dir: string): string {
  if (!/[\n"\\]/.test(dir)) return dir;
  return `"${dir.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;
}
