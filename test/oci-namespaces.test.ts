// Namespaces: each type new or shared with the host, joined by path (a named netns, another
// container's), and a user namespace with uid/gid mappings.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync, statSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { Suite } from './helpers/suite.js';
import type { Spec } from './helpers/bundle.js';
import { show } from './helpers/runtime.js';

const s = new Suite('ns');
const rt = s.rt;
after(() => s.assertClean());

// OCI namespace type → /proc/self/ns name.
const TYPES: Record<string, string> = { pid: 'pid', network: 'net', mount: 'mnt', ipc: 'ipc', uts: 'uts', cgroup: 'cgroup' };

function hostNs(name: string): string {
  return readlinkSync(`/proc/self/ns/${name}`);
}

function onlyNamespaces(types: string[]): (sp: Spec) => void {
  return (sp) => {
    sp.linux!.namespaces = types.map((type) => ({ type })) as NonNullable<Spec['linux']>['namespaces'];
    if (!types.includes('uts')) delete sp.hostname;
    if (!types.includes('network')) {
      // sysfs can only be mounted in a network namespace the container owns: bind the host's.
      sp.mounts = sp.mounts!.map((m) => (m.destination === '/sys' ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] } : m));
    }
  };
}

test('every namespace type new', async () => {
  const all = Object.keys(TYPES);
  const { report } = await s.probe({ edit: onlyNamespaces(all) });
  for (const t of all) {
    const n = TYPES[t]!;
    assert.notEqual(report.namespaces[n], hostNs(n), `${t} namespace is new`);
  }
});

for (const t of ['pid', 'network', 'ipc', 'uts', 'cgroup']) {
  test(`${t} namespace shared with the host when not listed`, async () => {
    const types = Object.keys(TYPES).filter((x) => x !== t);
    const { report } = await s.probe({ edit: onlyNamespaces(types) });
    const n = TYPES[t]!;
    assert.equal(report.namespaces[n], hostNs(n), `${t} is the host's`);
    for (const o of types) assert.notEqual(report.namespaces[TYPES[o]!], hostNs(TYPES[o]!), `${o} is new`);
  });
}

test('join a named network namespace by path', async () => {
  const name = `bt-netns-${process.pid}`;
  s.netns.push(name);
  execFileSync('ip', ['netns', 'add', name]);
  try {
    const path = `/run/netns/${name}`;
    const ino = statSync(path).ino;
    const { report } = await s.probe({
      extra: ['--sysctl', 'net.ipv4.ip_forward'],
      edit: (sp) => {
        sp.linux!.namespaces = sp.linux!.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path } : n));
      },
    });
    assert.equal(report.namespaces['net'], `net:[${ino}]`);
  } finally {
    execFileSync('ip', ['netns', 'delete', name]);
  }
});

test("join another container's uts and ipc namespaces by /proc/PID/ns path", async () => {
  const a = s.bundle({ args: ['/probe', 'sleep', '60'], edit: (sp) => (sp.hostname = 'first') });
  const ida = s.id('a');
  assert.equal((await rt.run(ida, a.dir, { detach: true })).code, 0);
  const pid = (await rt.state(ida)).pid;
  const { report } = await s.probe({
    edit: (sp) => {
      delete sp.hostname;
      sp.linux!.namespaces = sp.linux!.namespaces!.map((n) =>
        n.type === 'uts' || n.type === 'ipc' ? { type: n.type, path: `/proc/${pid}/ns/${n.type}` } : n,
      );
    },
  });
  assert.equal(report.hostname, 'first');
  assert.equal(report.namespaces['uts'], readlinkSync(`/proc/${pid}/ns/uts`));
  assert.equal(report.namespaces['ipc'], readlinkSync(`/proc/${pid}/ns/ipc`));
  assert.equal((await rt.delete(ida, { force: true })).code, 0);
});

test('joining a namespace path that does not exist fails, naming the path', async () => {
  const b = s.bundle({
    edit: (sp) => {
      sp.linux!.namespaces = sp.linux!.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path: '/run/netns/bt-does-not-exist' } : n));
    },
  });
  const id = s.id();
  const r = await rt.run(id, b.dir);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /bt-does-not-exist/);
  assert.notEqual((await rt.cmd(['state', id])).code, 0, 'nothing left behind');
});

function userns(sp: Spec): void {
  sp.linux!.namespaces!.push({ type: 'user' });
  sp.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  sp.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
}

test('user namespace: uid 0 inside maps to 100000 outside', async (t) => {
  if (!existsSync('/proc/self/ns/user')) return t.skip('no user namespaces on this kernel');
  const b = s.bundle({ args: ['/probe', 'report', '--sleep', '30', '--out', '/tmp/report.json'], edit: userns });
  const id = s.id();
  const r = await rt.run(id, b.dir, { detach: true });
  assert.equal(r.code, 0, show(r));
  const pid = (await rt.state(id)).pid;
  const status = execFileSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' });
  assert.match(status, /^Uid:\s+100000\s+100000\s+100000\s+100000$/m, 'runs as 100000 on the host');
  assert.match(status, /^Gid:\s+100000\s+100000\s+100000\s+100000$/m);
  assert.equal((await rt.delete(id, { force: true })).code, 0);

  const { report } = await s.probe({ edit: userns });
  assert.equal(report.uid, 0);
  assert.equal(report.gid, 0);
  assert.match(String(report.uidMap), /^\s*0\s+100000\s+65536\s*$/);
  assert.match(String(report.gidMap), /^\s*0\s+100000\s+65536\s*$/);
  assert.notEqual(report.namespaces['user'], hostNs('user'));
  // Full capabilities inside the namespace, not on the host.
  assert.notEqual(report.capabilities.effective, '0000000000000000');
});

test('user namespace with several mapping ranges and a non-root user', async (t) => {
  if (!existsSync('/proc/self/ns/user')) return t.skip('no user namespaces on this kernel');
  const { report } = await s.probe({
    edit: (sp) => {
      userns(sp);
      sp.linux!.uidMappings = [
        { containerID: 0, hostID: 200000, size: 1000 },
        { containerID: 1000, hostID: 300000, size: 1 },
      ];
      sp.process!.user = { uid: 1000, gid: 0 };
    },
  });
  assert.equal(report.uid, 1000);
  const lines = String(report.uidMap).trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
  assert.deepEqual(lines, [
    [0, 200000, 1000],
    [1000, 300000, 1],
  ]);
});

test('user namespace without mappings is refused with a clear error', async () => {
  const b = s.bundle({ edit: (sp) => sp.linux!.namespaces!.push({ type: 'user' }) });
  const id = s.id();
  const r = await rt.run(id, b.dir);
  if (r.code === 0) return; // a runtime may map the caller's ids; not refusing is fine
  assert.match(r.stderr, /map|uid|gid/i, show(r));
});
