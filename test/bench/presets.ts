/**
 * Part 6: `up` of an agent preset's role (Claude Code, its pinned version) with its CLI already in the cache,
 * against `up` of a role with the same image and `allow = []` (the same allowlist path, no preset), and the raw
 * floor on NAT (`git worktree add` + `docker run -d --network bridge`), as the egress part has it. The preset's
 * role keeps its environment, mounts, allowlist and credential route; only its command is one that waits, so no
 * model is needed. The credential comes from the environment (AGENT_SANDBOX_SECRETS_FROM_ENV), and the proxy
 * gets it by an exec at every up.
 *
 * The first up installs the CLI from the npm registry into a cache of this part's own (AGENT_SANDBOX_CACHE), with
 * an empty npm cache of its own too (npm_config_cache), so the download is timed whatever this machine holds, and reported once, outside the medians; the runs after it
 * use that cache. Everything is removed at the end, the cache too, and a leftover fails the part.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { presetNamed } from '../../src/core/agents/presets';
import type { Stats, Workspace } from './common';
import {
  CLI,
  STEP_TIMEOUT_MS,
  check,
  docker,
  expectNoContainer,
  expectRunning,
  median,
  note,
  ratio,
  ratioText,
  removeRawFloor,
  round,
  run,
  startRawFloor,
  stats,
  statsRow,
  table,
  timed,
} from './common';

/** The agents of this part, for the workspace's sandbox.toml. */
export const PRESET_AGENTS = `[agents.claude]
preset = "claude-code"
network = "nat"
command = ["sh", "-c", "sleep 600"]

[agents.allowlist]
network = "nat"
allow = []
command = ["sh", "-c", "sleep 600"]
`;

/** The ratio preset / allowlist that is "as fast as any other". */
const AIM_RATIO = 1.1;
/** What the image-facts probe's never-started container runs (src/core/agents/imagefacts.ts). */
const PROBE_COMMAND = '/agent-sandbox-never-started';
const KEY = `sk-ant-api03-bench-${process.pid}-only-the-host-knows-it`;

export interface PresetResults {
  runs: number;
  version: string;
  /** The first up, with the CLI not in the cache: the install from the npm registry included. */
  firstUpMs: number;
  /** firstUpMs less the cached preset up's median: about what the install costs. */
  installMs: number;
  /** The installed CLI's size on disk. */
  installedMB: number;
  preset: Stats;
  allowlist: Stats;
  raw: Stats;
  ratioToAllowlist: number;
  ratioToRaw: number;
  aim: number;
  withinAim: boolean;
}

interface FullInspect {
  Id: string;
  Config: { Env: string[] | null; Cmd: string[] | null };
  HostConfig: { NetworkMode: string; Binds: string[] | null };
}

/** The image-facts probe containers of the image, so that one the part leaves is seen (they carry no label). */
async function probeContainers(image: string): Promise<string[]> {
  const out = (await docker(['ps', '-a', '--no-trunc', '--filter', `ancestor=${image}`, '--format', '{{.ID}} {{.Command}}'])).stdout;
  return out.split('\n').filter((l) => l.includes(PROBE_COMMAND)).map((l) => l.split(' ')[0]);
}

async function diskMB(dir: string): Promise<number> {
  const out = (await run('du', ['-sk', dir])).stdout;
  return round(Number(out.split(/\s/)[0]) / 1024, 0);
}

export async function benchPresets(ws: Workspace, image: string, runs: number, rawPrefix: string): Promise<PresetResults> {
  const preset = presetNamed('claude-code')!;
  check(preset.install.kind === 'native', 'the claude-code preset is no longer a native install: this part must be changed');
  const version = preset.install.defaultVersion;
  const cache = path.join(ws.tmp, 'agent-cache');
  const npmCache = path.join(ws.tmp, 'npm-cache');
  const env: NodeJS.ProcessEnv = { ...process.env, AGENT_SANDBOX_CACHE: cache, ANTHROPIC_API_KEY: KEY, AGENT_SANDBOX_SECRETS_FROM_ENV: 'ANTHROPIC_API_KEY' };
  delete env.AGENT_SANDBOX_PROVIDER_ENDPOINTS;
  const up = (name: string, agent: string, timeoutMs = 5 * STEP_TIMEOUT_MS, extraEnv: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, [CLI, 'up', name, '--agent', agent, '--workspace', ws.root], { cwd: ws.root, env: { ...env, ...extraEnv }, timeoutMs });
  const rm = async (name: string) => {
    await run(process.execPath, [CLI, 'rm', '--force', name, '--workspace', ws.root], { cwd: ws.root, env });
    await expectNoContainer(ws.sandboxes.containerName(name));
  };
  const probesBefore = new Set(await probeContainers(image));

  /** The sandbox is what the preset makes: the agent in its forwarder's network, the CLI mounted read-only, the placeholder and not the key. */
  const expectPresetSandbox = async (name: string) => {
    const container = ws.sandboxes.containerName(name);
    await expectRunning(container, `agent-sandbox up ${name}`);
    const forwarder = await expectRunning(`${container}-egress-net`, `the forwarder of ${name}`);
    await expectRunning(`${container}-egress-proxy`, `the proxy of ${name}`);
    const info = JSON.parse((await docker(['inspect', '--type', 'container', container])).stdout) as FullInspect[];
    const agent = info[0];
    check(agent.HostConfig.NetworkMode === `container:${forwarder.Id}`, `${name} is not in its forwarder's network: ${agent.HostConfig.NetworkMode}`);
    check((agent.HostConfig.Binds ?? []).some((b) => b.startsWith(`${cache}/`) && b.endsWith(':/opt/agent-sandbox/agent:ro')), `${name} has no read-only mount of the cached CLI: ${(agent.HostConfig.Binds ?? []).join(' ')}`);
    const envs = agent.Config.Env ?? [];
    check(envs.some((e) => e.startsWith('ANTHROPIC_BASE_URL=http://127.0.0.1:3128/credential/anthropic')), `${name} has no credential route in its environment`);
    check(envs.some((e) => /^ANTHROPIC_API_KEY=.*agent-sandbox-placeholder-/.test(e)), `${name} has no placeholder for its key`);
    check(!envs.some((e) => e.includes(KEY)), `${name} has the real key in its environment`);
    check((agent.Config.Cmd ?? []).join(' ') === 'sh -c sleep 600', `${name} runs ${(agent.Config.Cmd ?? []).join(' ')}, not the role's command`);
  };

  const presetSamples: number[] = [];
  const allowSamples: number[] = [];
  const rawSamples: number[] = [];
  let firstUpMs: number;
  let installedMB: number;
  try {
    // The first up, with nothing in the cache: the install from the npm registry, once.
    note(`presets: the first up installs ${preset.install.npmName} ${version} from the npm registry into an empty cache`);
    // npm's own cache is empty too (npm_config_cache), or its copy of the tarballs would be timed, not the registry.
    const first = await timed(() => up('install', 'claude', 15 * STEP_TIMEOUT_MS, { npm_config_cache: npmCache }));
    check(/Installing Claude Code/.test(first.value.stderr + first.value.stdout), `the first up did not install the CLI: ${first.value.stderr.trim().slice(-300)}`);
    await expectPresetSandbox('install');
    await rm('install');
    firstUpMs = first.ms;
    installedMB = await diskMB(cache);

    // Iteration 0 warms up and is not counted; the order of the two ups alternates, so neither always goes first.
    for (let i = 0; i <= runs; i++) {
      note(`presets: ${i > 0 ? `run ${i}/${runs}` : 'warm-up'}`);
      const presetUp = async () => {
        const r = await timed(() => up(`c${i}`, 'claude'));
        check(!/Installing/.test(r.value.stderr + r.value.stdout), `up c${i} installed the CLI again: it was cached`);
        await expectPresetSandbox(`c${i}`);
        await rm(`c${i}`);
        return r.ms;
      };
      const allowUp = async () => {
        const r = await timed(() => up(`a${i}`, 'allowlist'));
        await expectRunning(ws.sandboxes.containerName(`a${i}`), `agent-sandbox up a${i}`);
        await expectRunning(`${ws.sandboxes.containerName(`a${i}`)}-egress-proxy`, `the proxy of a${i}`);
        await rm(`a${i}`);
        return r.ms;
      };
      let p: number;
      let a: number;
      if (i % 2) {
        p = await presetUp();
        a = await allowUp();
      } else {
        a = await allowUp();
        p = await presetUp();
      }
      const floor = { worktree: path.join(ws.tmp, 'raw-presets', `raw-${i}`), branch: `raw-presets/${i}`, container: `${rawPrefix}presets-${i}` };
      const rawUp = await timed(() =>
        startRawFloor(ws, floor, ['--init', '--memory', '256m', '--cpus', '1', '--pids-limit', '256', '--network', 'bridge', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', '1000:1000', '--volume', `${floor.worktree}:/workspace:rw`, image, 'sh', '-c', 'sleep 600']),
      );
      await expectRunning(floor.container, 'docker run');
      await removeRawFloor(ws, floor);
      if (i > 0) {
        presetSamples.push(p);
        allowSamples.push(a);
        rawSamples.push(rawUp.ms);
      }
    }
    const staging = (await fs.readdir(path.join(cache, 'agents'))).filter((f) => f.endsWith('.partial'));
    check(staging.length === 0, `the install left staging folders in the cache: ${staging.join(' ')}`);
  } finally {
    await fs.rm(cache, { recursive: true, force: true, maxRetries: 3 });
    await fs.rm(npmCache, { recursive: true, force: true, maxRetries: 3 });
    await fs.rm(path.join(ws.tmp, 'raw-presets'), { recursive: true, force: true });
  }
  for (const dir of [cache, npmCache]) check(!(await fs.stat(dir).then(() => true, () => false)), `the part's cache ${dir} is left`);
  const probesLeft = (await probeContainers(image)).filter((id) => !probesBefore.has(id));
  check(probesLeft.length === 0, `image-facts probe containers are left: ${probesLeft.join(' ')}`);

  const presetStats = stats(presetSamples);
  const ratioToAllowlist = ratio(median(presetSamples), median(allowSamples));
  return {
    runs,
    version,
    firstUpMs: round(firstUpMs),
    installMs: round(firstUpMs - presetStats.medianMs),
    installedMB,
    preset: presetStats,
    allowlist: stats(allowSamples),
    raw: stats(rawSamples),
    ratioToAllowlist,
    ratioToRaw: ratio(median(presetSamples), median(rawSamples)),
    aim: AIM_RATIO,
    withinAim: ratioToAllowlist <= AIM_RATIO,
  };
}

export function reportPresets(p: PresetResults): string {
  return [
    table(
      [
        [`6. up of a preset role, claude-code ${p.version} (ms)`, 'median', 'p90', 'min', 'max', 'vs raw'],
        statsRow('agent-sandbox up, preset, CLI cached', p.preset, ratioText(p.ratioToRaw)),
        statsRow('agent-sandbox up, allow = [], no preset', p.allowlist, ratioText(ratio(p.allowlist.medianMs, p.raw.medianMs))),
        statsRow('raw: git worktree add + docker run -d (NAT)', p.raw, '1.00x'),
      ],
      (i) => i > 0,
    ),
    `the first up, CLI not cached: ${fmtS(p.firstUpMs)} (the install from the npm registry about ${fmtS(p.installMs)}, ${p.installedMB} MB), once, not in the medians`,
    `aim: a preset's up within ${p.aim}x of the same up without one (median): ${ratioText(p.ratioToAllowlist)} ${p.withinAim ? 'met' : 'NOT met'}`,
  ].join('\n');
}

const fmtS = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
