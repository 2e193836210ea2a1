// Edge cases of the lifecycle found in review: processes that outlive init, a cgroup that
// belongs to another container, ids at the top of the uid range, pausing a created
// container, concurrent starts, and updates with the wrong type.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync } from 'node:fs';
import { Suite } from './helpers/suite.js';
import { show, sleep } from './helpers/runtime.js';

const s = new Suite('edge');
const rt = s.rt;
after(() => s.assertClean());
const berthOnly = rt.isRunc ? 'berth-specific behaviour' : false;

test('processes that outlive init (no pid namespace) are reachable by kill --all, ps and delete', { skip: berthOnly }, async () => {
  const b = s.bundle({
    args: ['/bin/sh', '-c', 'sleep 300 & echo started; exit 0'],
    edit: (sp) => (sp.linux!.namespaces = sp.linux!.namespaces!.filter((n) => n.type !== 'pid')),
  });
  const id = s.id('orphan');
  const r = await rt.run(id, b.dir, { detach: true });
  assert.equal(r.code, 0, show(r));
  await rt.waitStatus(id, 'stopped');
  const ps = await rt.cmd(['ps', '--format', 'json', id]);
  assert.equal(ps.code, 0, show(ps));
  assert.equal((JSON.parse(ps.stdout) as number[]).length, 1, 'the background sleep is listed');
  const d = await rt.delete(id, { force: true });
  assert.equal(d.code, 0, show(d));
  assert.notEqual((await rt.cmd(['state', id])).code, 0);
});

test('a cgroupsPath with another container in it is refused and the other keeps running', { skip: berthOnly }, async () => {
  const path = `/bt-edge-shared-${process.pid}`;
  const a = s.bundle({ args: ['/bin/sleep', '300'], edit: (sp) => (sp.linux!.cgroupsPath = path) });
  const first = s.id('owner');
  assert.equal((await rt.run(first, a.dir, { detach: true })).code, 0);
  const second = s.id('intruder');
  const r = await rt.create(second, a.dir);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /linux\.cgroupsPath: cgroup .* already has processes/, show(r));
  assert.equal((await rt.state(first)).status, 'running', 'the first container is untouched');
  assert.equal((await rt.delete(first, { force: true })).code, 0);
});

test('exec -u refuses ids the kernel reads as "unchanged"', { skip: berthOnly }, async () => {
  const b = s.bundle({ args: ['/bin/sleep', '300'] });
  const id = s.id('uid');
  assert.equal((await rt.run(id, b.dir, { detach: true })).code, 0);
  for (const user of ['4294967295', '70000000000', '1:x']) {
    const r = await rt.exec(id, ['/bin/id', '-u'], { user });
    assert.notEqual(r.code, 0, `-u ${user} must fail\n${show(r)}`);
    assert.match(r.stderr, /--user/);
  }
  const g = await rt.cmd(['exec', '-g', 'abc', id, '/bin/true']);
  assert.notEqual(g.code, 0);
  assert.match(g.stderr, /--additional-gids: invalid id "abc"/, show(g));
  assert.doesNotMatch(g.stderr, /at .*\.js/, 'no stack trace');
  await rt.delete(id, { force: true });
});

test('a created container can be paused, shows paused, resumes and starts', { skip: berthOnly }, async () => {
  const b = s.bundle({ args: ['/bin/sleep', '300'] });
  const id = s.id('pausec');
  assert.equal((await rt.create(id, b.dir)).code, 0);
  assert.equal((await rt.cmd(['pause', id])).code, 0);
  assert.equal((await rt.state(id)).status, 'paused');
  assert.equal((await rt.cmd(['resume', id])).code, 0);
  assert.equal((await rt.state(id)).status, 'created');
  assert.equal((await rt.start(id)).code, 0);
  assert.equal((await rt.state(id)).status, 'running');
  await rt.delete(id, { force: true });
});

test('of two concurrent starts one wins and the other fails at once', { skip: berthOnly }, async () => {
  const b = s.bundle({ args: ['/bin/sleep', '300'] });
  const id = s.id('race');
  assert.equal((await rt.create(id, b.dir)).code, 0);
  const t0 = Date.now();
  const [x, y] = await Promise.all([rt.start(id), rt.start(id)]);
  assert.deepEqual([x.code, y.code].sort(), [0, 1], `${show(x)}\n${show(y)}`);
  assert.ok(Date.now() - t0 < 10_000, 'no 30 s wait');
  assert.equal((await rt.state(id)).status, 'running');
  await rt.delete(id, { force: true });
});

test('update with a wrong type is refused and changes nothing', { skip: berthOnly }, async () => {
  const b = s.bundle({ args: ['/bin/sleep', '300'], edit: (sp) => (sp.linux!.resources = { ...sp.linux!.resources, pids: { limit: 50 } }) });
  const id = s.id('upd');
  assert.equal((await rt.run(id, b.dir, { detach: true })).code, 0);
  const r = await rt.cmd(['update', '--resources', '-', id], { input: '{"pids":{"limit":"x"}}' });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /pids\.limit/, show(r));
  const pidsDir = (await rt.state(id)).pid;
  const cg = readFileSync(`/proc/${pidsDir}/cgroup`, 'utf8').split('\n').find((l) => /:pids:/.test(l))?.split(':')[2];
  if (cg) assert.equal(readFileSync(`/sys/fs/cgroup/pids${cg}/pids.max`, 'utf8').trim(), '50');
  await rt.delete(id, { force: true });
  await sleep(10);
});

test('a startContainer hook from the image runs with the process user and capabilities, not as root', { skip: berthOnly }, async () => {
  const b = s.bundle({
    args: ['/bin/sleep', '300'],
    edit: (sp) => {
      sp.process!.user = { uid: 1000, gid: 1000 };
      sp.process!.noNewPrivileges = true;
      sp.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'grep -E "^(Uid|CapEff|NoNewPrivs)" /proc/self/status > /tmp/hook.out'] }] };
    },
  });
  const id = s.id('hookpriv');
  assert.equal((await rt.create(id, b.dir)).code, 0);
  assert.equal((await rt.start(id)).code, 0);
  const out = await rt.exec(id, ['/bin/cat', '/tmp/hook.out']);
  assert.match(out.stdout, /Uid:\s+1000/, show(out));
  assert.match(out.stdout, /CapEff:\s+0+\n/);
  assert.match(out.stdout, /NoNewPrivs:\s+1/);
  await rt.delete(id, { force: true });
});

test('what fails before exec fails create, not start: an unmapped uid in a user namespace', { skip: berthOnly }, async () => {
  const b = s.bundle({
    args: ['/bin/true'],
    edit: (sp) => {
      sp.linux!.namespaces!.push({ type: 'user' });
      sp.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      sp.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      sp.process!.user = { uid: 70000, gid: 0 };
    },
  });
  const id = s.id('unmapped');
  const r = await rt.create(id, b.dir);
  assert.notEqual(r.code, 0, show(r));
  assert.match(r.stderr, /setresuid 70000/);
  assert.notEqual((await rt.cmd(['state', id])).code, 0, 'nothing left');
});

test('a relative program is found from the working directory', { skip: berthOnly }, async () => {
  const b = s.bundle({ args: ['./true'], edit: (sp) => (sp.process!.cwd = '/bin') });
  const id = s.id('relative');
  const r = await rt.run(id, b.dir, { detach: true });
  assert.equal(r.code, 0, show(r));
  await rt.waitStatus(id, 'stopped');
  await rt.delete(id);
});

test('a time namespace is really created', { skip: berthOnly }, async () => {
  const b = s.bundle({ args: ['/bin/readlink', '/proc/self/ns/time'], edit: (sp) => sp.linux!.namespaces!.push({ type: 'time' }) });
  const r = await rt.run(s.id('timens'), b.dir);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout.trim(), /^time:\[\d+\]$/);
  assert.notEqual(r.stdout.trim(), readlinkSync('/proc/self/ns/time'), "not the host's time namespace");
});

test('procfs is not mounted through a symlink in the image', { skip: berthOnly }, async () => {
  const b = s.bundle({ args: ['/bin/true'] });
  const { rmSync, mkdirSync, symlinkSync } = await import('node:fs');
  rmSync(`${b.rootfs}/proc`, { recursive: true, force: true });
  mkdirSync(`${b.rootfs}/vol/p`, { recursive: true });
  symlinkSync('/vol/p', `${b.rootfs}/proc`);
  const r = await rt.run(s.id('procln'), b.dir);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /mount proc on .*proc: a symlink is in the way/, show(r));
});
