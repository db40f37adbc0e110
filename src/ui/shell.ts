import * as vscode from 'vscode';
import type { Sandboxes } from '../core/sandboxes';

/** An integrated terminal running an interactive shell inside a sandbox, through the core's exec. */
export function createShellTerminal(core: Sandboxes, name: string): vscode.Terminal {
  const write = new vscode.EventEmitter<string>();
  const close = new vscode.EventEmitter<number>();
  let session: Awaited<ReturnType<Sandboxes['execInteractive']>> | undefined;
  const pty: vscode.Pseudoterminal = {
    onDidWrite: write.event,
    onDidClose: close.event,
    open: (dimensions) => {
      const size = { columns: dimensions?.columns ?? 120, rows: dimensions?.rows ?? 30 };
      core.execInteractive(name, ['sh', '-c', 'if command -v bash >/dev/null; then exec bash -l; else exec sh -l; fi'], size).then(
        (opened) => {
          session = opened;
          opened.output.on('data', (chunk: Buffer) => write.fire(chunk.toString('utf8')));
          void opened.exitCode.then((code) => close.fire(code));
        },
        (error: Error) => {
          write.fire(`\r\nCould not open a shell in ${name}: ${error.message}\r\n`);
          close.fire(1);
        },
      );
    },
    handleInput: (data) => session?.input.write(data),
    setDimensions: (dimensions) => void session?.resize(dimensions.columns, dimensions.rows),
    close: () => {
      session?.input.end();
      write.dispose();
      close.dispose();
    },
  };
  return vscode.window.createTerminal({ name: `Sandbox: ${name}`, pty, iconPath: new vscode.ThemeIcon('vm') });
}
