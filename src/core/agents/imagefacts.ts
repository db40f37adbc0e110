/**
 * What an image offers an agent's CLI: its architecture, its C library (a glibc build needs glibc's loader, a
 * musl build musl's) and whether it has bash (the agents' shell tools need it). Read from a container that is
 * created and never started, by asking the engine about paths in its file system; kept per image ID, which
 * names the image's content.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Engine } from '../engine/engine';
import type { Libc } from './presets';

export interface ImageFacts {
  cpu: 'x64' | 'arm64' | 'other';
  /** The C library whose loader is there; undefined: neither (a static-only image, busybox alone). */
  libc?: Libc;
  bash?: string;
}

const LOADERS: Record<'x64' | 'arm64', Record<Libc, string[]>> = {
  x64: { glibc: ['/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', '/usr/lib64/ld-linux-x86-64.so.2'], musl: ['/lib/ld-musl-x86_64.so.1'] },
  arm64: { glibc: ['/lib/ld-linux-aarch64.so.1', '/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1', '/usr/lib/ld-linux-aarch64.so.1'], musl: ['/lib/ld-musl-aarch64.so.1'] },
};
const BASH = ['/bin/bash', '/usr/bin/bash', '/usr/local/bin/bash'];

/** npm's name for a Docker architecture. */
export function npmCpu(architecture: string | undefined): ImageFacts['cpu'] {
  if (architecture === 'amd64' || architecture === 'x86_64') return 'x64';
  if (architecture === 'arm64' || architecture === 'aarch64') return 'arm64';
  return 'other';
}

/** The facts of an image, from the cache in `cacheDir` or read now. */
export async function imageFacts(engine: Engine, image: string, cacheDir: string): Promise<ImageFacts> {
  const inspected = await engine.inspectImage(image, `Reading the image ${image}`);
  const cacheFile = path.join(cacheDir, 'image-facts', `${inspected.Id.replace(/^sha256:/, '').slice(0, 64)}.json`);
  const cached = await fs.readFile(cacheFile, 'utf8').then((text) => JSON.parse(text) as ImageFacts, () => undefined);
  if (cached) return cached;
  const cpu = npmCpu(inspected.Architecture);
  const container = await engine.createContainer({ Image: inspected.Id, Cmd: ['/agent-sandbox-never-started'], Entrypoint: [], NetworkDisabled: true, Labels: {} }, `Looking into the image ${image}`);
  try {
    // GET, not HEAD (infoArchive): docker-modem waits for a HEAD answer's body that never comes. The tar stream
    // is dropped unread.
    const exists = (file: string) =>
      container.getArchive({ path: file }).then(
        (stream: NodeJS.ReadableStream) => {
          (stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
          return true;
        },
        () => false,
      );
    const first = async (files: string[]) => {
      for (const file of files) if (await exists(file)) return file;
      return undefined;
    };
    const facts: ImageFacts = { cpu };
    if (cpu !== 'other') {
      if (await first(LOADERS[cpu].glibc)) facts.libc = 'glibc';
      else if (await first(LOADERS[cpu].musl)) facts.libc = 'musl';
    }
    const bash = await first(BASH);
    if (bash) facts.bash = bash;
    await fs.mkdir(path.dirname(cacheFile), { recursive: true });
    await fs.writeFile(cacheFile, JSON.stringify(facts));
    return facts;
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}
