import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CAPABILITIES } from './capabilities.js';
import { FEATURE_MOUNT_OPTIONS, defaultSeccompFeatures, features } from './features.js';
import { OCI_VERSION } from './spec.js';

describe('features', () => {
  it('describes berth with the runtime-spec Features shape', () => {
    const f = features();
    assert.equal(f.ociVersionMin, '1.0.0');
    assert.equal(f.ociVersionMax, OCI_VERSION);
    assert.deepEqual(f.hooks, ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
    assert.deepEqual(f.mountOptions, [...FEATURE_MOUNT_OPTIONS].sort());
    assert.deepEqual(f.linux.namespaces, ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts']);
    assert.deepEqual(f.linux.capabilities, [...CAPABILITIES]);
    assert.deepEqual(f.linux.cgroup, { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false });
    assert.deepEqual(f.linux.apparmor, { enabled: true });
    assert.deepEqual(f.linux.selinux, { enabled: true });
    assert.deepEqual(f.linux.mountExtensions, { idmap: { enabled: false } });
    assert.deepEqual(f.annotations, {});
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(f)));
  });

  it('takes the seccomp lists from seccomp.ts, without SCMP_ACT_NOTIFY', () => {
    const s = features().linux.seccomp;
    assert.equal(s.enabled, true);
    assert.ok(s.actions!.includes('SCMP_ACT_ERRNO'));
    assert.ok(!s.actions!.includes('SCMP_ACT_NOTIFY'));
    assert.deepEqual(s.actions, [...s.actions!].sort());
    assert.ok(s.operators!.includes('SCMP_CMP_MASKED_EQ'));
    assert.ok(s.archs!.includes('SCMP_ARCH_X86_64'));
    assert.ok(s.knownFlags!.includes('SECCOMP_FILTER_FLAG_LOG'));
    assert.deepEqual(defaultSeccompFeatures().supportedFlags, defaultSeccompFeatures().knownFlags);
  });

  it('takes overrides', () => {
    const f = features({
      capabilities: ['CAP_KILL'],
      seccomp: null,
      mountOptions: ['ro', 'bind'],
      cgroup: { systemd: true },
      apparmor: false,
      idmapMounts: true,
      annotations: { 'org.berth.version': '0.1.0' },
    });
    assert.deepEqual(f.linux.capabilities, ['CAP_KILL']);
    assert.deepEqual(f.linux.seccomp, { enabled: false });
    assert.deepEqual(f.mountOptions, ['bind', 'ro']);
    assert.equal(f.linux.cgroup.systemd, true);
    assert.equal(f.linux.cgroup.v1, true);
    assert.equal(f.linux.apparmor.enabled, false);
    assert.equal(f.linux.mountExtensions.idmap.enabled, true);
    assert.deepEqual(f.annotations, { 'org.berth.version': '0.1.0' });
  });
});
