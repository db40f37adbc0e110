// Bundles the extension and the CLI into dist/. Type checking is tsc's job (npm run typecheck).
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/**
 * dockerode loads its BuildKit session support (gRPC and protobufjs, half of the bundle) at start-up. Agent
 * Sandboxes builds with the classic builder and never opens such a session, so the module is replaced by one
 * that says so if it is ever called: the CLI starts faster and the extension activates faster.
 */
const withoutBuildKitSession = {
  name: 'without-buildkit-session',
  setup(build) {
    build.onResolve({ filter: /^\.\/session$/ }, (args) =>
      /dockerode[\\/]lib$/.test(args.resolveDir) ? { path: 'dockerode-session', namespace: 'stub' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
      contents:
        "module.exports = function withSession(docker, auth, handler) { handler(new Error('BuildKit sessions are not included in Agent Sandboxes: it builds with the classic builder.')); };",
      loader: 'js',
    }));
  },
};

/**
 * The terminal emulator that rebuilds an interactive agent's screen is a bundle of its own (dist/screen.js), which
 * the first attach loads: every other command would parse it for nothing.
 */
const screenApart = {
  name: 'screen-apart',
  setup(build) {
    build.onResolve({ filter: /^\.\/screen$/ }, (args) => (/src[\\/]core[\\/]sandbox$/.test(args.resolveDir) ? { path: './screen.js', external: true } : undefined));
  },
};

/** @type {esbuild.BuildOptions} */
const common = {
  plugins: [withoutBuildKitSession, screenApart],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  logLevel: 'info',
  // ssh2 (under dockerode) loads an optional native crypto addon and cpu-features inside try/catch and falls
  // back to pure JavaScript without them; leaving them out keeps the bundle free of native files.
  external: ['vscode', 'cpu-features', './crypto/build/Release/sshcrypto.node'],
};

const builds = [
  { ...common, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js' },
  { ...common, entryPoints: ['src/cli/index.ts'], outfile: 'dist/cli-main.js' },
  { ...common, external: ['./cli-main.js'], entryPoints: ['src/cli/launch.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  { ...common, entryPoints: ['src/core/sandbox/screen.ts'], outfile: 'dist/screen.js' },
  // The egress proxy and forwarder run in containers of their own on a bare Node image: nothing external, nothing stubbed.
  { ...common, plugins: [], external: [], entryPoints: ['src/egress/proxy.ts'], outfile: 'dist/egress-proxy.js' },
  { ...common, plugins: [], external: [], entryPoints: ['src/egress/forward.ts'], outfile: 'dist/egress-forward.js' },
];

if (watch) {
  for (const options of builds) await (await esbuild.context(options)).watch();
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
}
