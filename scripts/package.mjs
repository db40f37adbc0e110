// Packs the extension as users install it: `vsce package` (which runs the production build first) into
// dist/agent-sandboxes.vsix, then checks that the package holds every file the extension and the CLI read
// at run time, so that a file left out of .vscodeignore's allowlist fails here and not on a user's machine.
//   npm run package [-- OUT.vsix]
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import yauzl from 'yauzl';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'agent-sandboxes.vsix'));

/** The paths every entry of a zip file has. */
function zipEntries(file) {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true }, (error, zip) => {
      if (error) return reject(error);
      const names = new Set();
      zip.on('entry', (entry) => {
        names.add(entry.fileName);
        zip.readEntry();
      });
      zip.on('end', () => resolve(names));
      zip.on('error', reject);
      zip.readEntry();
    }),
  );
}

/**
 * What the extension reads at run time: its entry points (main, bin), every file package.json names (icons),
 * and every bundle the build wrote to dist/ (the egress proxy and forwarder are read from there to build
 * their image).
 */
function requiredFiles(manifest) {
  const named = new Set([manifest.main, ...Object.values(manifest.bin ?? {})]);
  const visit = (value) => {
    if (typeof value === 'string' && /^(\.\/)?(media|dist)\/[^*\s]+\.\w+$/.test(value)) named.add(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(visit);
  };
  visit(manifest.contributes);
  if (manifest.icon) named.add(manifest.icon);
  const bundles = fs.readdirSync(path.join(root, 'dist')).filter((name) => name.endsWith('.js')).map((name) => `dist/${name}`);
  return [...new Set([...named].map((file) => path.posix.normalize(file)).concat(bundles))].sort();
}

fs.mkdirSync(path.dirname(out), { recursive: true });
execFileSync(process.execPath, [path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies', '--allow-missing-repository', '--no-rewrite-relative-links', '--out', out], {
  cwd: root,
  stdio: 'inherit',
});
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const entries = await zipEntries(out);
const missing = requiredFiles(manifest).filter((file) => !entries.has(`extension/${file}`));
if (missing.length > 0) {
  console.error(`package: ${path.relative(root, out)} lacks files the extension reads at run time: ${missing.join(', ')}. Add them to .vscodeignore's allowlist.`);
  fs.rmSync(out, { force: true });
  process.exit(1);
}
console.log(`package: ${path.relative(root, out)} holds all ${requiredFiles(manifest).length} files the extension reads at run time`);
