import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { parseConfig } from '../../src/core/config/config';
import { ConfigError } from '../../src/core/errors';
import { errorForTerminal } from '../../src/cli/errors';
import { presentError } from '../../src/ui/errors';
import { checkNetworkExposure } from '../../src/core/sandbox/policy';

const ROOT = path.resolve('/ws');
const settingsOf = (text: string) => parseConfig(text, path.join(ROOT, 'sandbox.toml'), ROOT).agents.default.container;
const none = { allowHostNetwork: false, allowPublicPorts: false };

function refused(text: string, key: string, line: number, says: RegExp, hint: RegExp): void {
  assert.throws(
    () => checkNetworkExposure(settingsOf(text), none),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.key, key);
      assert.equal(error.line, line);
      assert.match(error.detail, says);
      // What the terminal and the editor show, each in its own terms.
      assert.match(`${errorForTerminal(error)}\n${presentError(error).text}`, hint);
      return true;
    },
  );
}

describe('sandbox.toml cannot open the machine\'s network without the user', () => {
  test('network = "host" (ours or AgentLoop\'s network_mode) needs the user\'s consent', () => {
    refused('[sandbox.container]\nimage = "a"\nnetwork = "host"\n', 'sandbox.container.network', 3, /this machine's own network/, /AGENT_SANDBOX_ALLOW_HOST_NETWORK=1/);
    refused('[orchestrator.container_sandbox]\ncontainer_image = "a"\nnetwork_mode = "host"\n', 'orchestrator.container_sandbox.network_mode', 3, /abstract unix sockets/, /agentSandboxes\.allowHostNetwork/);
    refused('[agents.default]\nimage = "a"\nnetwork = "host"\n', 'agents.default.network', 3, /loopback/, /network = "nat"/);
    checkNetworkExposure(settingsOf('[sandbox.container]\nimage = "a"\nnetwork = "host"\n'), { ...none, allowHostNetwork: true });
  });

  test('ports on an address other than loopback need the user\'s consent; loopback ones (the default) do not', () => {
    refused('[sandbox.container]\nimage = "a"\nports = ["3000", "0.0.0.0:8080:80"]\n', 'sandbox.container.ports', 3, /80\/tcp is published on 0\.0\.0\.0/, /"8080:80"[^]*AGENT_SANDBOX_ALLOW_PUBLIC_PORTS=1/);
    refused('[sandbox.container]\nimage = "a"\nports = ["[::]:9000:90/udp"]\n', 'sandbox.container.ports', 3, /90\/udp is published on ::/, /allowPublicPorts/);
    refused('[sandbox.container]\nimage = "a"\nports = ["192.168.1.5::80"]\n', 'sandbox.container.ports', 3, /on 192\.168\.1\.5/, /"80"/);
    for (const ports of ['"3000"', '"8080:80"', '"127.0.0.1:8080:80"', '"127.0.0.2::80"', '"[::1]:81:80"']) {
      checkNetworkExposure(settingsOf(`[sandbox.container]\nimage = "a"\nports = [${ports}]\n`), none);
    }
    checkNetworkExposure(settingsOf('[sandbox.container]\nimage = "a"\nports = ["0.0.0.0:8080:80"]\n'), { ...none, allowPublicPorts: true });
    // Not published at all without NAT: nothing to refuse.
    checkNetworkExposure(settingsOf('[sandbox.container]\nimage = "a"\nnetwork = "none"\nports = ["0.0.0.0:8080:80"]\n'), none);
  });

  test('env values are kept as written: a value naming a host variable is not expanded', () => {
    const settings = settingsOf('[sandbox.container]\nimage = "a"\nenv = { TOKEN = "$GITHUB_TOKEN", HOME_DIR = "${HOME}" }\n');
    assert.deepEqual(settings.env, { TOKEN: '$GITHUB_TOKEN', HOME_DIR: '${HOME}' });
  });
});
