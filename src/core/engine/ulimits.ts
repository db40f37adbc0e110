import { readFileSync } from 'node:fs';

/** A ulimit as the engine's API takes it (HostConfig.Ulimits). */
export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

/** The hard limits the engine's containers can have at most here: the machine's, as this process sees them. */
export interface HardLimits {
  /** RLIMIT_NOFILE; undefined when unlimited. */
  nofile?: number;
  /** RLIMIT_NPROC; undefined when unlimited. */
  nproc?: number;
  /** fs.nr_open: no process can have more open files. */
  nrOpen?: number;
  /** kernel.pid_max: Podman lowers its own RLIMIT_NPROC to it, so its containers cannot have more. */
  pidMax?: number;
}

/** fs.nr_open's default; also what Docker gives containers on most hosts. */
export const MAX_NOFILE = 1024 * 1024;
/** pid_max's largest value. The pids limit is what bounds a sandbox's processes. */
export const MAX_NPROC = 4 * 1024 * 1024;

/**
 * Reads the hard limits from /proc/self/limits (Node has no getrlimit). Undefined where there is no such file
 * (not Linux: the engine then runs in a VM whose limits this machine does not decide).
 */
export function readHardLimits(text?: string, sysctl: (name: string) => number | undefined = readSysctl): HardLimits | undefined {
  let source = text;
  if (source === undefined) {
    try {
      source = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const limits: HardLimits = {};
  const nrOpen = sysctl('fs/nr_open');
  const pidMax = sysctl('kernel/pid_max');
  if (nrOpen !== undefined) limits.nrOpen = nrOpen;
  if (pidMax !== undefined) limits.pidMax = pidMax;
  let found = false;
  for (const line of source.split('\n')) {
    // "Max open files            20000                20000                files"
    const match = /^(Max open files|Max processes)\s+(\S+)\s+(\S+)/.exec(line);
    if (!match) continue;
    found = true;
    const hard = match[3] === 'unlimited' ? undefined : Number(match[3]);
    if (hard !== undefined && !Number.isSafeInteger(hard)) continue;
    if (match[1] === 'Max open files') limits.nofile = hard;
    else limits.nproc = hard;
  }
  return found ? limits : undefined;
}

/**
 * The ulimits every sandbox gets, on Docker and Podman alike: open files and processes at the machine's hard
 * limits (soft = hard), capped at the kernel's ceilings (fs.nr_open, kernel.pid_max) and 1048576 files. An engine without CAP_SYS_RESOURCE (rootful Podman in
 * a container, for one) cannot start a container whose limits exceed its own, and engines differ in what they
 * give by default (Docker: its daemon's limits; Podman: 1048576 files): explicit limits make them behave alike.
 * RLIMIT_NPROC counts every process of the agent's uid on the host, so it stays high; the sandbox's own
 * process count is bounded by its pids limit.
 */
export function sandboxUlimits(...given: [limits: HardLimits | undefined] | []): Ulimit[] {
  const limits = given.length > 0 ? given[0] : cachedHardLimits();
  if (!limits) return [];
  const nofile = Math.min(limits.nofile ?? MAX_NOFILE, limits.nrOpen ?? MAX_NOFILE, MAX_NOFILE);
  const nproc = Math.min(limits.nproc ?? MAX_NPROC, limits.pidMax ?? MAX_NPROC, MAX_NPROC);
  return [
    { Name: 'nofile', Soft: nofile, Hard: nofile },
    { Name: 'nproc', Soft: nproc, Hard: nproc },
  ];
}

let cached: { limits: HardLimits | undefined } | undefined;

function cachedHardLimits(): HardLimits | undefined {
  cached ??= { limits: readHardLimits() };
  return cached.limits;
}

function readSysctl(name: string): number | undefined {
  try {
    const value = Number(readFileSync(`/proc/sys/${name}`, 'utf8').trim());
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}
