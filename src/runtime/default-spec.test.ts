import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaultSpec } from './default-spec.js';
import { OCI_VERSION, type Spec } from './spec.js';
import { validateSpec } from './validate.js';

const RUNC = '/usr/sbin/runc';

/** `runc spec` output, or undefined when runc is not installed. */
function runcSpec(rootless: boolean): Spec | undefined {
  if (!existsSync(RUNC)) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'berth-runc-spec-'));
  try {
    execFileSync(RUNC, ['spec', ...(rootless ? ['--rootless'] : [])], { cwd: dir, stdio: 'ignore' });
    return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Spec;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What berth deliberately does differently from runc 1.1: its version, name and cgroup namespace. */
function asRunc(spec: Spec): Spec {
  const copy = structuredClone(spec);
  copy.ociVersion = 'runc';
  copy.hostname = 'runc';
  copy.linux!.namespaces = copy.linux!.namespaces!.filter((ns) => ns.type !== 'cgroup');
  return copy;
}

describe('defaultSpec', () => {
  it('has runc defaults with berth as hostname', () => {
    const spec = defaultSpec();
    assert.equal(spec.ociVersion, OCI_VERSION);
    assert.equal(spec.hostname, 'berth');
    assert.equal(spec.process!.terminal, true);
    assert.deepEqual(spec.process!.args, ['sh']);
    assert.equal(spec.process!.cwd, '/');
    assert.deepEqual(spec.process!.user, { uid: 0, gid: 0 });
    assert.equal(spec.process!.noNewPrivileges, true);
    assert.deepEqual(spec.process!.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }]);
    const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
    assert.deepEqual(spec.process!.capabilities, { bounding: caps, effective: caps, permitted: caps, ambient: caps });
    assert.deepEqual(spec.root, { path: 'rootfs', readonly: true });
    assert.deepEqual(
      spec.mounts!.map((m) => m.destination),
      ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup'],
    );
    assert.deepEqual(
      spec.linux!.namespaces!.map((ns) => ns.type),
      ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup'],
    );
    assert.deepEqual(spec.linux!.resources, { devices: [{ allow: false, access: 'rwm' }] });
    assert.ok(spec.linux!.maskedPaths!.includes('/proc/kcore'));
    assert.ok(spec.linux!.readonlyPaths!.includes('/proc/sys'));
    validateSpec(spec);
  });

  it('uses the given args', () => {
    assert.deepEqual(defaultSpec({ args: ['/bin/busybox', 'true'] }).process!.args, ['/bin/busybox', 'true']);
    assert.deepEqual(defaultSpec({ args: [] }).process!.args, ['sh']);
  });

  it('returns independent objects', () => {
    const a = defaultSpec();
    a.mounts![0]!.destination = '/x';
    a.linux!.maskedPaths!.push('/y');
    a.process!.capabilities!.bounding!.push('CAP_SYS_ADMIN');
    assert.deepEqual(defaultSpec(), defaultSpec());
    assert.equal(defaultSpec().mounts![0]!.destination, '/proc');
  });

  it('makes the rootless changes runc makes', () => {
    const spec = defaultSpec({ rootless: true, uid: 1000, gid: 100 });
    assert.deepEqual(
      spec.linux!.namespaces!.map((ns) => ns.type),
      ['pid', 'ipc', 'uts', 'mount', 'cgroup', 'user'],
    );
    assert.deepEqual(spec.linux!.uidMappings, [{ containerID: 0, hostID: 1000, size: 1 }]);
    assert.deepEqual(spec.linux!.gidMappings, [{ containerID: 0, hostID: 100, size: 1 }]);
    assert.equal(spec.linux!.resources, undefined);
    const sys = spec.mounts!.find((m) => m.destination === '/sys');
    assert.deepEqual(sys, { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
    const pts = spec.mounts!.find((m) => m.destination === '/dev/pts');
    assert.equal(pts!.options!.includes('gid=5'), false);
    validateSpec(spec);
  });

  it('maps the effective ids by default when rootless', () => {
    const spec = defaultSpec({ rootless: true });
    assert.equal(spec.linux!.uidMappings![0]!.hostID, process.geteuid!());
    assert.equal(spec.linux!.gidMappings![0]!.hostID, process.getegid!());
  });

  for (const rootless of [false, true]) {
    it(`matches \`runc spec${rootless ? ' --rootless' : ''}\` except for berth's choices`, (t) => {
      const runc = runcSpec(rootless);
      if (!runc) {
        t.skip(`${RUNC} is not installed`);
        return;
      }
      const ours = asRunc(defaultSpec({ rootless }));
      runc.ociVersion = 'runc';
      assert.deepEqual(ours, runc);
    });
  }
});
