/**
 * The `agent-sandbox` command as installed: turns Node's compile cache on (Node 22.1 and later), so that a run
 * after the first skips compiling the CLI's bundle, then runs the CLI (dist/cli-main.js).
 */
import * as nodeModule from 'node:module';

(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
// eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only once the cache is on
require('./cli-main.js');
