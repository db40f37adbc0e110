// Serves a real VS Code (the VS Code server 1.100.3 from scripts/vscode-server.sh) on 127.0.0.1 with this extension
// in development mode on a folder, for a person's browser: the try-out (scripts/try.sh) uses it where no desktop
// VS Code can open. Prints the workbench URL, one line on stdout, and serves until SIGINT (Ctrl-C) or SIGTERM,
// then ends the server and removes its temp folder.
//
//   node out/test/vscode/serve.js --folder DIR [--port N] [--dry-run]
//
// --port N     listen on N when it is free, else on any free port (default 8123)
// --dry-run    only print the URL it would serve on port N, start nothing
// Env: AGENT_SANDBOX_VSCODE_SERVER (server-main.js; default: what scripts/vscode-server.sh prints).
// Exit code: 130/143 after SIGINT/SIGTERM (the normal end), 1 when the server fails or exits by itself, 2 on bad usage.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { VscodeServer, locateServer, onSignals, portOrAny, workbenchUrl } from './server';

function say(message: string): void {
  process.stderr.write(`serve: ${message}\n`);
}

function usage(message: string): never {
  process.stderr.write(`serve: ${message}\nusage: node out/test/vscode/serve.js --folder DIR [--port N] [--dry-run]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): { folder: string; port: number; dryRun: boolean } {
  let folder: string | undefined;
  let port = 8123;
  let dryRun = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--folder' && argv[i + 1]) folder = path.resolve(argv[++i]);
    else if (arg === '--port' && argv[i + 1]) port = Number(argv[++i]);
    else if (arg === '--dry-run') dryRun = true;
    else usage(`unknown argument ${arg}`);
  }
  if (!folder || !fs.statSync(folder, { throwIfNoEntry: false })?.isDirectory()) usage('--folder DIR: a folder to open');
  if (!Number.isInteger(port) || port < 1 || port > 65535) usage('--port takes a port number (1 to 65535)');
  return { folder, port, dryRun };
}

async function main(): Promise<number> {
  const { folder, port, dryRun } = parseArgs(process.argv.slice(2));
  if (dryRun) {
    process.stdout.write(`${workbenchUrl(port, folder)}\n`);
    return 0;
  }
  const serverMain = locateServer(say);
  const free = await portOrAny(port);
  if (free !== port) say(`port ${port} is taken: using a free one`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandboxes-serve-'));
  const server = new VscodeServer({ serverMain, root, port: free });
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> => (cleaned ??= server.stop().then(() => fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 })));
  const signalled = onSignals(say, cleanup);
  try {
    await server.start();
  } catch (err) {
    say(`the VS Code server did not start: ${(err as Error).message}`);
    process.stderr.write(server.report() + '\n');
    await cleanup();
    return 1;
  }
  process.stdout.write(`${server.workbenchUrl(folder)}\n`);
  say(`VS Code serves ${folder} with Agent Sandboxes on ${server.origin} until Ctrl-C`);
  say(`from another machine: \`ssh -L ${server.port}:127.0.0.1:${server.port} THIS_HOST\` first, then open the URL there`);
  const why = await server.exited;
  const signal = signalled();
  if (signal !== undefined) {
    await cleanup(); // the signal's handler stopped the server: the normal end
    return signal;
  }
  say(`${why}:\n${server.report()}`);
  await cleanup();
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
