/**
 * Podman's default seccomp profile lets any process create user namespaces (`unshare -U`, `clone` with
 * CLONE_NEWUSER) and call mount and its kin, which inside a user namespace of its own then succeed: a wide
 * door into the kernel that Docker's default profile keeps shut. Sandboxes on Podman get Podman's own
 * profile with those calls closed the way Docker closes them (the escape-attempt suite found the difference).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Where Podman (containers-common) keeps its default profile. */
const PODMAN_PROFILES = ['/usr/share/containers/seccomp.json', '/etc/containers/seccomp.json'];

/** Namespace and mount calls no sandbox needs; the kernel's keyring too, as Docker's profile has it. */
const CLOSED = ['unshare', 'setns', 'mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsmount', 'fsconfig', 'fspick', 'open_tree', 'move_mount', 'mount_setattr', 'keyctl', 'add_key', 'request_key'];
/** Every CLONE_NEW* flag: clone may make threads and processes, never namespaces. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;
const EPERM = 1;
const ENOSYS = 38;

interface SeccompRule {
  names?: string[];
  action: string;
  args?: Array<{ index: number; value: number; valueTwo?: number; op: string }>;
  errnoRet?: number;
  [key: string]: unknown;
}

interface SeccompProfile {
  syscalls: SeccompRule[];
  [key: string]: unknown;
}

/** The profile with namespaces and mounts closed, as Docker's default profile closes them. */
export function hardenedProfile(profile: SeccompProfile): SeccompProfile {
  const closed = new Set([...CLOSED, 'clone', 'clone3']);
  const syscalls = profile.syscalls
    .map((rule) => (rule.action === 'SCMP_ACT_ALLOW' && rule.names ? { ...rule, names: rule.names.filter((name) => !closed.has(name)) } : rule))
    .filter((rule) => !rule.names || rule.names.length > 0);
  syscalls.push(
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
    // clone3 passes its flags in memory seccomp cannot read: "not implemented" makes libc fall back to clone.
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    { names: CLOSED, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
  );
  return { ...profile, syscalls };
}

/**
 * Writes the hardened profile beside the repository's state and returns the SecurityOpt entry naming it
 * (Podman reads the file itself). Undefined where Podman's default profile is not on this machine (a
 * remote engine): the engine's own default then applies.
 */
export async function podmanSeccompOption(stateDir: string): Promise<string | undefined> {
  for (const source of PODMAN_PROFILES) {
    const text = await fs.readFile(source, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    const hardened = `${JSON.stringify(hardenedProfile(JSON.parse(text) as SeccompProfile), null, 1)}\n`;
    const file = path.join(stateDir, `seccomp-${createHash('sha256').update(hardened).digest('hex').slice(0, 12)}.json`);
    if (!(await fs.access(file).then(() => true, () => false))) {
      await fs.mkdir(stateDir, { recursive: true });
      await fs.writeFile(`${file}.tmp`, hardened);
      await fs.rename(`${file}.tmp`, file);
    }
    return `seccomp=${file}`;
  }
  return undefined;
}
