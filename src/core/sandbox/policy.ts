/**
 * What only the user decides, and the checks of what sandbox.toml asks of the host against it.
 */
import { originsOf } from '../config/model';
import type { ContainerSettings, SandboxConfig } from '../config/model';
import { ALLOWED_ENGINE_HOSTS_ENV, ALLOWED_ENGINE_HOSTS_SETTING, allowedEngineHostsFromEnv, engineHostAllowed } from '../engine/engine';
import type { EngineSelection } from '../engine/engine';
import { configErrorAt } from '../errors';
import { providerEndpoints, PROVIDER_ENDPOINTS_ENV } from '../agents/launch';
import { environmentSecrets } from '../isolation/secrets';
import type { SecretSource } from '../isolation/secrets';
import { allowedVolumePathsFromEnv } from '../isolation/volumes';

/**
 * What only the user decides, never sandbox.toml (which an agent's synced change could rewrite): where
 * volumes outside the workspace may come from, whether the agent gets the engine's socket, and where
 * secrets' values come from.
 */
export interface HostPolicy {
  /** Host folders volumes may mount from outside the workspace (agentSandboxes.allowedVolumePaths). */
  allowedVolumePaths: string[];
  /** Hands the agent the engine's socket, and with it the host (agentSandboxes.dangerouslyExposeEngineSocket). */
  exposeEngineSocket: boolean;
  secrets: SecretSource;
  /** Extra `name:address` entries for the egress proxy's /etc/hosts (split-horizon names; test hosts). */
  egressHosts: string[];
  /** Engine addresses sandbox.toml's engine_host may name beyond this machine's own (agentSandboxes.allowedEngineHosts). */
  allowedEngineHosts: string[];
  /** sandbox.toml may ask for `network = "host"` (agentSandboxes.allowHostNetwork). */
  allowHostNetwork: boolean;
  /** sandbox.toml may publish ports on addresses other than loopback (agentSandboxes.allowPublicPorts). */
  allowPublicPorts: boolean;
  /** Where each provider's credential route forwards to, in place of the preset's (agentSandboxes.providerEndpoints). */
  providerEndpoints: Record<string, string>;
}

/** The user's consent, on the command line, to sandbox.toml's `network = "host"`. */
export const ALLOW_HOST_NETWORK_ENV = 'AGENT_SANDBOX_ALLOW_HOST_NETWORK';
/** The user's consent, on the command line, to ports published on addresses other than loopback. */
export const ALLOW_PUBLIC_PORTS_ENV = 'AGENT_SANDBOX_ALLOW_PUBLIC_PORTS';

/** The policy of a command-line run: the environment says it. */
export function environmentPolicy(env: NodeJS.ProcessEnv = process.env): HostPolicy {
  return {
    allowedVolumePaths: allowedVolumePathsFromEnv(env),
    exposeEngineSocket: env.AGENT_SANDBOX_DANGEROUSLY_EXPOSE_ENGINE_SOCKET === '1',
    secrets: environmentSecrets(env),
    egressHosts: (env.AGENT_SANDBOX_EGRESS_HOSTS ?? '').split(',').map((entry) => entry.trim().replace('=', ':')).filter(Boolean),
    allowedEngineHosts: allowedEngineHostsFromEnv(env),
    allowHostNetwork: env[ALLOW_HOST_NETWORK_ENV] === '1',
    allowPublicPorts: env[ALLOW_PUBLIC_PORTS_ENV] === '1',
    providerEndpoints: providerEndpoints((env[PROVIDER_ENDPOINTS_ENV] ?? '').split(',').map((e) => e.trim()).filter(Boolean), PROVIDER_ENDPOINTS_ENV),
  };
}

/**
 * Refuses what would open the machine's network to or for the agent without the user's consent: the host's
 * network (its loopback services and abstract unix sockets: D-Bus, X11, containerd's shim), and ports
 * published on an address other than loopback (reachable from other machines).
 */
export function checkNetworkExposure(settings: ContainerSettings, policy: Pick<HostPolicy, 'allowHostNetwork' | 'allowPublicPorts'>): void {
  const origins = originsOf(settings);
  if (settings.network === 'host' && !policy.allowHostNetwork) {
    throw configErrorAt(
      origins.network,
      'network = "host" gives the agent this machine\'s own network: every service listening on its loopback (databases, an engine\'s TCP API, development servers) and its abstract unix sockets (D-Bus, X11, containerd\'s shim), which no container should reach',
      'Use network = "nat" (with ports to publish) or "none"; or, if you mean it, allow it (only your own settings can).',
      [{ do: 'allow', setting: 'agentSandboxes.allowHostNetwork', env: ALLOW_HOST_NETWORK_ENV, value: '1' }],
    );
  }
  if (settings.network !== 'nat' || settings.allow !== undefined || policy.allowPublicPorts) return;
  const open = settings.ports.find((port) => !isLoopback(port.hostIp));
  if (open) {
    throw configErrorAt(
      origins.ports,
      `the port ${open.containerPort}/${open.protocol} is published on ${open.hostIp}, where other machines reach what the agent serves (its files, its secrets)`,
      `Publish on loopback (write the port without an address: "${open.hostPort ?? ''}${open.hostPort ? ':' : ''}${open.containerPort}"); or, if you mean it, allow it (only your own settings can).`,
      [{ do: 'allow', setting: 'agentSandboxes.allowPublicPorts', env: ALLOW_PUBLIC_PORTS_ENV, value: '1' }],
    );
  }
}

function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || /^::ffff:127\./i.test(address);
}

/**
 * Refuses an engine only the repository named: sandbox.toml's engine_host, in force (the user's settings name
 * no engine), that is none of this machine's own engines and that the user did not allow. Nothing has been
 * sent to it yet: not the build context, the task or the secrets, not even a ping.
 */
export function checkEngineHost(config: SandboxConfig, selection: EngineSelection, settings: Partial<EngineSelection> | undefined, policy: HostPolicy): void {
  const host = config.engineHost;
  if (host === undefined || selection.host !== host || settings?.host?.trim() === host) return;
  if (engineHostAllowed(host, policy.allowedEngineHosts)) return;
  throw configErrorAt(
    config.engineHostOrigin,
    `the engine ${host} is named by the repository only: it is none of this machine's own engines (DOCKER_HOST, Docker's or Podman's socket) and you have not allowed it, and an engine receives the build context, the task and the secrets`,
    'If you trust it, allow it or choose the engine yourself (only your own settings can). Otherwise remove engine_host from sandbox.toml.',
    [{ do: 'allow', setting: ALLOWED_ENGINE_HOSTS_SETTING, env: ALLOWED_ENGINE_HOSTS_ENV, value: host }],
  );
}
