import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import ignore from '@balena/dockerignore';
import * as tar from 'tar-stream';
import type { ContainerSettings } from './config/model';
import type { Engine, OutputSink } from './engine/engine';
import { ImageError } from './errors';
import { LABEL } from './engine/labels';

/** The name the Dockerfile gets inside the build context when it lives outside the context folder. */
const OUTSIDE_DOCKERFILE = '.agent-sandbox.Dockerfile';

export interface ImageResult {
  /** The reference the container is created from. */
  ref: string;
  /** Whether this call built or pulled it (false: it was there and up to date). */
  changed: boolean;
}

interface ContextEntry {
  /** Path inside the context, with forward slashes. */
  name: string;
  absolute: string;
  kind: 'file' | 'directory' | 'symlink';
  mode: number;
  linkTarget?: string;
  /** For a file: the real path of the context it must still be inside when it is read. */
  root?: string;
}

/**
 * Makes sure the image for a container exists: pulls a configured image when the engine lacks it, or builds
 * a Dockerfile unless an image built from the very same Dockerfile and context is there already. The
 * Dockerfile and context are real paths that passed checkBuildSources.
 */
export async function ensureImage(
  engine: Engine,
  settings: ContainerSettings,
  repoName: string,
  output: OutputSink,
  options: { force?: boolean; signal?: AbortSignal; cacheDir?: string } = {},
): Promise<ImageResult> {
  if (settings.dockerfile) return buildIfChanged(engine, settings.dockerfile, settings.context ?? path.dirname(settings.dockerfile), repoName, output, options);
  if (!settings.image) {
    throw new ImageError('sandbox.toml names no image.', 'Set `image = "..."` or `dockerfile = "..."` under [sandbox.container] (or for the agent role).');
  }
  if (!options.force && (await engine.imageId(settings.image))) return { ref: settings.image, changed: false };
  await engine.pull(settings.image, output, options.signal);
  return { ref: settings.image, changed: true };
}

async function buildIfChanged(
  engine: Engine,
  dockerfile: string,
  contextDir: string,
  repoName: string,
  output: OutputSink,
  options: { force?: boolean; signal?: AbortSignal; cacheDir?: string },
): Promise<ImageResult> {
  const dockerfileText = await readUnfollowed(dockerfile, path.dirname(dockerfile)).catch((error: Error) => {
    if (error instanceof ImageError) throw error;
    throw new ImageError(`The Dockerfile ${dockerfile} cannot be read.`, 'Check `dockerfile` in sandbox.toml: it is relative to the workspace root.');
  });
  const entries = await collectContext(contextDir).catch((error: NodeJS.ErrnoException) => {
    if (error instanceof ImageError) throw error;
    throw new ImageError(`The build context ${contextDir} cannot be read (${error.code ?? error.message}).`, 'Check `context` in sandbox.toml: it is relative to the workspace root.');
  });
  const inside = path.relative(contextDir, dockerfile);
  const dockerfileInContext = !inside.startsWith('..') && !path.isAbsolute(inside) ? inside.split(path.sep).join('/') : undefined;
  const hash = await cachedContextHash(entries, dockerfileText, dockerfileInContext ?? OUTSIDE_DOCKERFILE, options.cacheDir);
  // Podman names it localhost/agent-sandbox/...: looked up and built under that name, the skip works there too.
  const tag = await engine.localImageName(`agent-sandbox/${imageNamePart(repoName)}:${hash.slice(0, 16)}`);
  if (!options.force && (await engine.imageId(tag))) {
    output(`Image ${tag} is up to date with ${path.basename(dockerfile)} and its context: build skipped.\n`);
    return { ref: tag, changed: false };
  }
  output(`Building ${tag} from ${dockerfile}\n`);
  const context = packContext(entries, dockerfileInContext ? undefined : dockerfileText);
  await engine.build(
    context,
    { tag, dockerfile: dockerfileInContext ?? OUTSIDE_DOCKERFILE, labels: { [LABEL.contextHash]: hash } },
    output,
    options.signal,
  );
  return { ref: tag, changed: true };
}

/**
 * Every file of the context that the engine would receive, in a stable order, minus .dockerignore's. Links are
 * never followed: a link is sent as a link (its target's text), so one pointing outside the context sends
 * nothing of what it points at, and the engine resolves COPY sources inside the context only. `contextDir` is
 * a real path (see checkBuildSources): each file is read later only if it is still inside it.
 */
export async function collectContext(contextDir: string): Promise<ContextEntry[]> {
  const root = path.resolve(contextDir);
  // Read only as a file of its own: a .dockerignore that is a link is packed as a link, never followed.
  const ignoreFile = path.join(contextDir, '.dockerignore');
  const ignoreStats = await fs.lstat(ignoreFile).catch(() => undefined);
  const ignoreText = ignoreStats?.isFile() ? await fs.readFile(ignoreFile, 'utf8') : '';
  const filter = ignore({ ignorecase: false }).add(ignoreText);
  const entries: ContextEntry[] = [];
  const walk = async (relative: string): Promise<void> => {
    const names = (await fs.readdir(path.join(contextDir, relative))).sort();
    for (const name of names) {
      const rel = relative ? `${relative}/${name}` : name;
      // The engine always receives the Dockerfile and .dockerignore, whatever the ignore file says.
      if (filter.ignores(rel) && name !== '.dockerignore') continue;
      const absolute = path.join(contextDir, rel);
      const stat = await fs.lstat(absolute);
      if (stat.isSymbolicLink()) {
        entries.push({ name: rel, absolute, kind: 'symlink', mode: 0o777, linkTarget: await fs.readlink(absolute) });
      } else if (stat.isDirectory()) {
        entries.push({ name: rel, absolute, kind: 'directory', mode: stat.mode & 0o7777 });
        await walk(rel);
      } else if (stat.isFile()) {
        entries.push({ name: rel, absolute, kind: 'file', mode: stat.mode & 0o7777, root });
      }
    }
  };
  await walk('');
  return entries;
}

/** A digest of what decides the image: the Dockerfile, and every context file's path, mode and bytes. */
export async function contextHash(entries: ContextEntry[], dockerfile: Buffer, dockerfileName: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`dockerfile ${dockerfileName}\0`).update(dockerfile).update('\0');
  for (const entry of entries) {
    hash.update(`${entry.kind} ${entry.name} ${entry.mode.toString(8)}\0`);
    if (entry.kind === 'file') hash.update(await readEntry(entry));
    if (entry.kind === 'symlink') hash.update(entry.linkTarget ?? '');
    hash.update('\0');
  }
  return hash.digest('hex');
}

/**
 * The context hash, reused while no file's size, mtime or inode changed (and the Dockerfile is the same),
 * so that `up` does not read a large context again each time.
 */
async function cachedContextHash(entries: ContextEntry[], dockerfile: Buffer, dockerfileName: string, cacheDir?: string): Promise<string> {
  if (!cacheDir) return contextHash(entries, dockerfile, dockerfileName);
  const signature = createHash('sha256').update(dockerfileName).update('\0').update(dockerfile);
  for (const entry of entries) {
    const stat = await fs.lstat(entry.absolute);
    signature.update(`${entry.kind} ${entry.name} ${entry.mode} ${stat.size} ${stat.mtimeMs} ${stat.ino}\0${entry.linkTarget ?? ''}\0`);
  }
  const key = signature.digest('hex');
  const cacheFile = path.join(cacheDir, 'context-hashes.json');
  const cache = JSON.parse(await fs.readFile(cacheFile, 'utf8').catch(() => '{}')) as Record<string, string>;
  if (cache[key]) return cache[key];
  const hash = await contextHash(entries, dockerfile, dockerfileName);
  // A handful of contexts per repository: keep the newest few.
  const kept = Object.fromEntries(Object.entries(cache).slice(-15));
  kept[key] = hash;
  await fs.mkdir(cacheDir, { recursive: true });
  await fs.writeFile(cacheFile, JSON.stringify(kept));
  return hash;
}

function packContext(entries: ContextEntry[], outsideDockerfile?: Buffer): Readable {
  const pack = tar.pack();
  const write = async () => {
    for (const entry of entries) {
      const header = { name: entry.name, mode: entry.mode, mtime: new Date(0), uid: 0, gid: 0 };
      if (entry.kind === 'directory') await addEntry(pack, { ...header, type: 'directory' });
      else if (entry.kind === 'symlink') await addEntry(pack, { ...header, type: 'symlink', linkname: entry.linkTarget });
      else await addEntry(pack, { ...header, type: 'file' }, await readEntry(entry));
    }
    if (outsideDockerfile) await addEntry(pack, { name: OUTSIDE_DOCKERFILE, mode: 0o644, mtime: new Date(0), type: 'file' }, outsideDockerfile);
    pack.finalize();
  };
  write().catch((error) => pack.destroy(error));
  return pack;
}

function readEntry(entry: ContextEntry): Promise<Buffer> {
  return entry.root === undefined ? fs.readFile(entry.absolute) : readUnfollowed(entry.absolute, entry.root);
}

/**
 * Reads a file of the build context as the file it was when the context was collected, even if something
 * (an agent with a read-write volume over the context) swapped a path for a link since: no link is followed
 * on its last component, it must still be a regular file (a FIFO does not hang the read), and, where the
 * kernel tells (Linux's /proc/self/fd), the file opened must still be inside `root`, the context's real path.
 */
export async function readUnfollowed(file: string, root: string): Promise<Buffer> {
  let handle;
  try {
    handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw outside(file, 'it became a symbolic link');
    throw error;
  }
  try {
    if (!(await handle.stat()).isFile()) throw outside(file, 'it is no longer a regular file');
    const opened = await fs.readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    if (opened !== undefined && opened.startsWith('/') && !within(opened.replace(/ \(deleted\)$/, ''), root)) throw outside(file, `it leads to ${opened}`);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

function outside(file: string, why: string): ImageError {
  return new ImageError(
    `The build context changed while it was read: ${file} was a file inside it, and now ${why}. Nothing of it was sent to the engine, and the build stops.`,
    'Something is changing the build context (a sandbox with a read-write volume over it?). Stop it, then build again.',
  );
}

function within(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative));
}

/** Adds one entry to a tar being packed, once the pack has taken it. */
export function addEntry(pack: tar.Pack, header: tar.Headers, content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, content ?? undefined, (error) => (error ? reject(error) : resolve()));
  });
}

/** A repository folder name made safe for an image repository name (lowercase, [a-z0-9._-]). */
export function imageNamePart(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'workspace';
}
