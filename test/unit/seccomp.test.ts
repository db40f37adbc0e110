import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hardenedProfile } from '../../src/core/engine/seccomp';

describe('hardenedProfile', () => {
  const podmanLike = {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['read', 'clone', 'clone3', 'unshare', 'mount', 'setns', 'keyctl', 'write'], action: 'SCMP_ACT_ALLOW', args: [] },
      { names: ['unshare'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
    ],
  };

  test('no rule allows namespaces or mounts any more; ordinary calls stay allowed', () => {
    const hardened = hardenedProfile(podmanLike);
    const allowed = hardened.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args?.length).flatMap((r) => r.names ?? []);
    assert.deepEqual(allowed.sort(), ['read', 'write']);
    assert.ok(hardened.syscalls.some((r) => r.names?.includes('personality')), 'other rules are kept');
  });

  test('clone is allowed only without CLONE_NEW* flags; clone3 says ENOSYS; the rest EPERM', () => {
    const rules = hardenedProfile(podmanLike).syscalls;
    const clone = rules.filter((r) => r.names?.includes('clone'));
    assert.deepEqual(clone, [{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }]);
    assert.deepEqual(rules.find((r) => r.names?.includes('clone3')), { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    const denied = rules.find((r) => r.names?.includes('unshare') && r.action === 'SCMP_ACT_ERRNO');
    assert.equal(denied?.errnoRet, 1);
    for (const name of ['mount', 'setns', 'keyctl', 'pivot_root']) assert.ok(denied?.names?.includes(name), name);
  });
});
