/**
 * An interactive agent's screen rebuilt from the end of its output, so an attach shows the screen as it is now,
 * not hours of output replayed at the user. A bundle of its own (dist/screen.js, with the terminal emulator),
 * loaded by the first attach: no other command pays for parsing it.
 */
import { SerializeAddon } from '@xterm/addon-serialize';
import { Terminal } from '@xterm/headless';
import { SCREEN_SOURCE_BYTES } from './terminal';

/**
 * The screen that `output` leaves on a terminal of this size, as the escape sequences that paint it on a
 * cleared one (text, colours and the cursor), with no scrollback.
 */
export function screenOf(output: Buffer, columns: number, rows: number): Promise<string> {
  const terminal = new Terminal({ cols: Math.max(2, columns), rows: Math.max(1, rows), scrollback: 0, allowProposedApi: true });
  const serializer = new SerializeAddon();
  terminal.loadAddon(serializer);
  const tail = output.length > SCREEN_SOURCE_BYTES ? output.subarray(output.length - SCREEN_SOURCE_BYTES) : output;
  return new Promise((resolve) => {
    terminal.write(tail, () => {
      const screen = serializer.serialize({ scrollback: 0 });
      terminal.dispose();
      resolve(`\x1b[H\x1b[2J${screen}`);
    });
  });
}
