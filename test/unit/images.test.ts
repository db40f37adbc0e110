import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageError } from '../../src/core/errors';
import { collectContext, contextHash, readUnfollowed } from '../../src/core/images';

let T: string;
let context: string;
let outside: string;
const SECRET = 'PRIVATE KEY outside the context';

before(async () => {
  T = await realpath(await mkdtemp(path.join(os.tmpdir(), 'images-test-')));
  context = path.join(T, 'context');
  outside = path.join(T, 'home', '.ssh');
  await mkdir(path.join(context, 'sub'), { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(path.join(outside, 'id_ed25519'), SECRET);
  await writeFile(path.join(context, 'Dockerfile'), 'FROM scratch\n');
  await writeFile(path.join(context, 'sub', 'id_ed25519'), 'a decoy, inside\n');
  await symlink(path.join(outside, 'id_ed25519'), path.join(context, 'key-link'));
  await symlink(outside, path.join(context, 'dir-link'));
});

after(async () => {
  await rm(T, { recursive: true, force: true });
});

describe('the build context is read without following links out of it', () => {
  test('a link to a file or a folder outside is collected as a link, never read through', async () => {
    const entries = await collectContext(context);
    const byName = Object.fromEntries(entries.map((e) => [e.name, e]));
    assert.equal(byName['key-link'].kind, 'symlink');
    assert.equal(byName['key-link'].linkTarget, path.join(outside, 'id_ed25519'));
    assert.equal(byName['dir-link'].kind, 'symlink');
    assert.equal(entries.some((e) => e.name.startsWith('dir-link/')), false, 'a linked folder is not walked');
    // The hash reads files only: nothing of the key enters it (the same hash with the key changed).
    const before = await contextHash(entries, Buffer.from('FROM scratch\n'), 'Dockerfile');
    await writeFile(path.join(outside, 'id_ed25519'), `${SECRET} changed`);
    assert.equal(await contextHash(await collectContext(context), Buffer.from('FROM scratch\n'), 'Dockerfile'), before);
  });

  test('a .dockerignore that is a link is not read as the ignore list', async () => {
    await writeFile(path.join(T, 'ignore-everything'), '*\n');
    await symlink(path.join(T, 'ignore-everything'), path.join(context, '.dockerignore'));
    try {
      const names = (await collectContext(context)).map((e) => e.name);
      assert.ok(names.includes('Dockerfile') && names.includes('sub/id_ed25519'), names.join(', '));
    } finally {
      await rm(path.join(context, '.dockerignore'));
    }
  });

  test('a file swapped for a link, or read through a folder swapped for one, after it was collected, is refused', async () => {
    const entries = await collectContext(context);
    const decoy = entries.find((e) => e.name === 'sub/id_ed25519')!;
    assert.equal((await readUnfollowed(decoy.absolute, context)).toString(), 'a decoy, inside\n');
    // The folder becomes a link to the home's .ssh: the same name now reaches the real key.
    await rename(path.join(context, 'sub'), path.join(T, 'sub-moved'));
    await symlink(outside, path.join(context, 'sub'));
    try {
      await assert.rejects(readUnfollowed(decoy.absolute, context), (error: unknown) => error instanceof ImageError && /now it leads to .*\.ssh/.test(error.message));
      await assert.rejects(contextHash(entries, Buffer.from(''), 'Dockerfile'), ImageError);
    } finally {
      await rm(path.join(context, 'sub'));
      await rename(path.join(T, 'sub-moved'), path.join(context, 'sub'));
    }
    // The file itself becomes a link.
    await rm(decoy.absolute);
    await symlink(path.join(outside, 'id_ed25519'), decoy.absolute);
    await assert.rejects(readUnfollowed(decoy.absolute, context), (error: unknown) => error instanceof ImageError && /became a symbolic link/.test(error.message));
    // Or a FIFO, which would hang a plain read.
    await rm(decoy.absolute);
    execFileSync('mkfifo', [decoy.absolute]);
    await assert.rejects(readUnfollowed(decoy.absolute, context), (error: unknown) => error instanceof ImageError && /no longer a regular file/.test(error.message));
  });
});
