// Bad input: malformed config, fields of the wrong type, missing rootfs, duplicate ids, unknown
// containers, bad signals. Each fails with a non-zero exit, a message naming the field or
// object, and leaves nothing in --root.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { Suite } from './helpers/suite.js';
import { show, type RunResult } from './helpers/runtime.js';
import type { Spec } from './helpers/bundle.js';

const s = new Suite('bad');
const rt = s.rt;
after(() => s.assertClean());

function rootEntries(): string[] {
  return existsSync(rt.root) ? readdirSync(rt.root) : [];
}

async function assertCreateFails(id: string, dir: string, mention: RegExp): Promise<RunResult> {
  const before = rootEntries();
  const r = await rt.create(id, dir);
  if (r.code === 0) await rt.delete(id, { force: true });
  assert.notEqual(r.code, 0, `create must fail\n${show(r)}`);
  assert.ok(!r.timedOut, 'no hang');
  // runc 1.1.5's messages often name neither field nor file ("unexpected EOF"); berth's must.
  if (!rt.isRunc) assert.match(r.stderr, mention, show(r));
  assert.notEqual((await rt.cmd(['state', id])).code, 0, 'no container was registered');
  assert.deepEqual(rootEntries(), before, 'nothing left in --root');
  return r;
}

test('malformed config.json', async () => {
  const b = s.bundle();
  writeFileSync(b.configPath, '{ "ociVersion": "1.0.2", "process": ');
  await assertCreateFails(s.id(), b.dir, /config\.json|json|unexpected end/i);
});

test('missing config.json', async () => {
  const b = s.bundle();
  rmSync(b.configPath);
  await assertCreateFails(s.id(), b.dir, /config\.json/);
});

const WRONG_TYPES: [string, (sp: Spec) => void, RegExp][] = [
  ['process.args is a string', (sp) => ((sp.process as unknown as Record<string, unknown>)['args'] = '/bin/true'), /args/],
  ['process.user.uid is a string', (sp) => ((sp.process!.user as unknown as Record<string, unknown>)['uid'] = 'root'), /uid/],
  ['process.env is an object', (sp) => ((sp.process as unknown as Record<string, unknown>)['env'] = { PATH: '/bin' }), /env/],
  ['linux.namespaces has an unknown type', (sp) => sp.linux!.namespaces!.push({ type: 'bogusns' } as never), /bogusns|namespace/],
  ['mounts[].destination is a number', (sp) => sp.mounts!.push({ destination: 42 } as never), /destination|mount/],
  ['root is missing', (sp) => delete sp.root, /root/],
  ['process.rlimits has an unknown type', (sp) => (sp.process!.rlimits = [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }]), /RLIMIT_BOGUS|rlimit/i],
  ['capabilities has an unknown name', (sp) => sp.process!.capabilities!.bounding!.push('CAP_BOGUS'), /CAP_BOGUS|capabilit/i],
];

for (const [what, edit, mention] of WRONG_TYPES) {
  test(`config with a bad field: ${what}`, async (t) => {
    if (rt.isRunc && what.startsWith('capabilities')) return t.skip('runc 1.1.5 ignores unknown capabilities with a warning');
    const b = s.bundle({ edit });
    await assertCreateFails(s.id(), b.dir, mention);
  });
}

test('missing rootfs', async () => {
  const b = s.bundle();
  rmSync(b.rootfs, { recursive: true });
  await assertCreateFails(s.id(), b.dir, /rootfs|no such file/i);
});

test('missing process args', async () => {
  const b = s.bundle({ edit: (sp) => (sp.process!.args = []) });
  await assertCreateFails(s.id(), b.dir, /args/);
});

test('duplicate id', async () => {
  const b = s.bundle({ args: ['/probe', 'sleep', '30'] });
  const id = s.id();
  assert.equal((await rt.create(id, b.dir)).code, 0);
  const pid = (await rt.state(id)).pid;
  const r = await rt.create(id, b.dir);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /exist/i, show(r));
  const st = await rt.state(id);
  assert.equal(st.status, 'created', 'the first container is untouched');
  assert.equal(st.pid, pid);
  assert.equal((await rt.delete(id, { force: true })).code, 0);
});

test('invalid container ids are refused', async () => {
  const b = s.bundle();
  for (const bad of ['../escape', 'a/b', '.', '']) {
    const r = await rt.create(bad, b.dir);
    assert.notEqual(r.code, 0, `id ${JSON.stringify(bad)} refused`);
  }
  assert.ok(!existsSync(`${rt.root}/../escape`));
});

const UNKNOWN = 'bt-no-such-container';
const COMMANDS: string[][] = [
  ['start', UNKNOWN],
  ['state', UNKNOWN],
  ['kill', UNKNOWN, 'KILL'],
  ['delete', UNKNOWN],
  ['pause', UNKNOWN],
  ['resume', UNKNOWN],
  ['exec', UNKNOWN, '/bin/true'],
  ['ps', UNKNOWN],
  ['update', '--pids-limit', '10', UNKNOWN],
  ['events', '--stats', UNKNOWN],
];

for (const args of COMMANDS) {
  test(`${args[0]} of an unknown container fails`, async () => {
    const r = await rt.cmd(args);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /not exist|not found|no such/i, show(r));
    // runc 1.1.5 does not name the container in these messages; berth must.
    if (!rt.isRunc) assert.match(r.stderr, new RegExp(UNKNOWN), 'the message names the container');
    assert.ok(!rootEntries().includes(UNKNOWN), 'no state was created');
  });
}

test('delete --force of an unknown container fails too', async () => {
  const r = await rt.delete(UNKNOWN, { force: true });
  // runc exits 0 here for idempotent clean-up by shims; either is acceptable if nothing is created.
  if (r.code !== 0) assert.match(r.stderr, /not exist|not found|no such/i);
  assert.ok(!rootEntries().includes(UNKNOWN));
});

test('a bad signal name or number is refused', async () => {
  const b = s.bundle({ args: ['/probe', 'sleep', '30'] });
  const id = s.id();
  assert.equal((await rt.run(id, b.dir, { detach: true })).code, 0);
  for (const sig of ['SIGFOO', 'FOO', '999', '-1']) {
    const r = await rt.kill(id, sig);
    assert.notEqual(r.code, 0, `kill ${sig}\n${show(r)}`);
    assert.match(r.stderr, /signal|invalid/i, show(r));
  }
  assert.equal((await rt.state(id)).status, 'running', 'still running');
  assert.equal((await rt.delete(id, { force: true })).code, 0);
});

test('an unknown command and an unknown flag fail with usage errors', async () => {
  const u = await rt.cmd(['frobnicate']);
  assert.notEqual(u.code, 0);
  const f = await rt.cmd(['create', '--no-such-flag', 'bt-x']);
  assert.notEqual(f.code, 0);
  assert.ok(!rootEntries().includes('bt-x'));
});

test('--systemd-cgroup with a plain cgroupsPath gives a clear error or works', async () => {
  const b = s.bundle({ args: ['/bin/true'] });
  const id = s.id();
  const r = await rt.cmd(['--systemd-cgroup', 'run', '--bundle', b.dir, id]);
  if (r.code !== 0) assert.match(r.stderr, /systemd|cgroupsPath|slice/i, show(r));
  await rt.delete(id, { force: true });
});

test('an AppArmor profile or SELinux label on a host without them is a clear error', async (t) => {
  const apparmor = existsSync('/sys/kernel/security/apparmor');
  const selinux = existsSync('/sys/fs/selinux/enforce');
  if (apparmor || selinux) return t.skip('this host has AppArmor or SELinux: the refusal cannot be tested here');
  if (rt.isRunc) return t.skip('runc 1.1.5 ignores a profile when AppArmor is off');
  const a = s.bundle({ edit: (sp) => (sp.process!.apparmorProfile = 'berth-test-profile') });
  await assertCreateFails(s.id(), a.dir, /process\.apparmorProfile "berth-test-profile": AppArmor is not enabled/);
  const b = s.bundle({ edit: (sp) => (sp.process!.selinuxLabel = 'system_u:system_r:container_t:s0') });
  await assertCreateFails(s.id(), b.dir, /process\.selinuxLabel .*SELinux is not enabled/);
});
