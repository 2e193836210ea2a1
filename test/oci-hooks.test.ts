// Hooks: all six kinds with the state on stdin, in order; failures and timeouts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Suite } from './helpers/suite.js';
import { show } from './helpers/runtime.js';
import type { Spec } from './helpers/bundle.js';

const s = new Suite('hook');
const rt = s.rt;
after(() => s.assertClean());

type Hook = { path: string; args?: string[]; env?: string[]; timeout?: number };

/** A hook that saves its stdin as KIND.json, its env as KIND.env and appends KIND to order.log. */
function recorder(kind: string, dir: string): Hook {
  return {
    path: '/bin/sh',
    args: ['sh', '-c', `cat > ${dir}/${kind}.json; env > ${dir}/${kind}.env; echo ${kind} >> ${dir}/order.log`, 'hook-arg'],
    env: ['PATH=/bin:/usr/bin', `BT_HOOK=${kind}`],
  };
}

test('all six hook kinds run in order with the state on stdin', async () => {
  const holder = s.bundle({ args: ['/bin/true'] });
  const host = holder.hostDir('hooks');
  const b = s.bundle({
    args: ['/probe', 'sleep', '0.2'],
    edit: (sp) => {
      sp.mounts!.push({ destination: '/hooks', type: 'bind', source: host, options: ['bind', 'rw'] });
      // startContainer runs inside the container: its path and files are the container's.
      sp.hooks = {
        prestart: [recorder('prestart', host)],
        createRuntime: [recorder('createRuntime', host)],
        createContainer: [recorder('createContainer', host)],
        startContainer: [recorder('startContainer', '/hooks')],
        poststart: [recorder('poststart', host)],
        poststop: [recorder('poststop', host)],
      } as Spec['hooks'];
    },
  });
  const id = s.id();
  const c = await rt.create(id, b.dir);
  assert.equal(c.code, 0, show(c));
  const pid = (await rt.state(id)).pid;
  const st = await rt.start(id);
  assert.equal(st.code, 0, show(st));
  await rt.waitStatus(id, 'stopped');
  const d = await rt.delete(id);
  assert.equal(d.code, 0, show(d));

  const order = readFileSync(join(host, 'order.log'), 'utf8').trim().split('\n');
  // runc 1.1.5 runs poststart while init runs startContainer (a race); the spec orders them.
  const seen = rt.isRunc ? [...order.slice(0, 3), ...order.slice(3, 5).sort().reverse(), ...order.slice(5)] : order;
  assert.deepEqual(seen, ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
  const statuses: Record<string, string> = {};
  for (const kind of order) {
    const state = JSON.parse(readFileSync(join(host, `${kind}.json`), 'utf8'));
    assert.equal(state.id, id, `${kind} state id`);
    assert.equal(state.bundle, b.dir, `${kind} state bundle`);
    assert.match(state.ociVersion, /^1\./);
    statuses[kind] = state.status;
    // createContainer and startContainer run in the container's pid namespace, where init may be pid 1.
    if (kind === 'startContainer' || kind === 'createContainer') assert.ok(state.pid === pid || state.pid === 1, `${kind} state pid ${state.pid}`);
    else if (kind !== 'poststop') assert.equal(state.pid, pid, `${kind} state pid`);
    const env = readFileSync(join(host, `${kind}.env`), 'utf8');
    assert.match(env, new RegExp(`^BT_HOOK=${kind}$`, 'm'), `${kind} got its env`);
  }
  assert.equal(statuses['poststop'], 'stopped');
  assert.ok(['created', 'running'].includes(statuses['poststart']!), `poststart status ${statuses['poststart']}`);
  assert.ok(['creating', 'created'].includes(statuses['createRuntime']!), `createRuntime status ${statuses['createRuntime']}`);
});

test('a failing prestart hook fails create and leaves nothing behind', async () => {
  const b = s.bundle({
    args: ['/probe', 'sleep', '30'],
    edit: (sp) => (sp.hooks = { prestart: [{ path: '/bin/sh', args: ['sh', '-c', 'echo hook-says-no >&2; exit 3'] }] } as Spec['hooks']),
  });
  const id = s.id();
  const c = await rt.create(id, b.dir);
  assert.notEqual(c.code, 0, 'create fails');
  assert.match(c.stderr, /hook|prestart/i, show(c));
  assert.notEqual((await rt.cmd(['state', id])).code, 0, 'no container');
  assert.deepEqual(existsSync(rt.root) ? readdirSync(rt.root).filter((e) => e.includes(id)) : [], []);
});

test('a failing createRuntime hook fails create too', async () => {
  const b = s.bundle({
    args: ['/probe', 'sleep', '30'],
    edit: (sp) => (sp.hooks = { createRuntime: [{ path: '/bin/false' }] } as Spec['hooks']),
  });
  const id = s.id();
  const c = await rt.create(id, b.dir);
  assert.notEqual(c.code, 0, show(c));
  assert.notEqual((await rt.cmd(['state', id])).code, 0);
});

test('a hook that exceeds its timeout fails create', async () => {
  const b = s.bundle({
    args: ['/probe', 'sleep', '30'],
    edit: (sp) => (sp.hooks = { prestart: [{ path: '/bin/sleep', args: ['sleep', '20'], timeout: 1 }] } as Spec['hooks']),
  });
  const id = s.id();
  const c = await rt.create(id, b.dir, { timeoutMs: 15_000 });
  assert.ok(!c.timedOut, 'the runtime enforced the hook timeout');
  assert.notEqual(c.code, 0, show(c));
  assert.notEqual((await rt.cmd(['state', id])).code, 0);
});

test('a failing poststop hook does not prevent delete', async () => {
  const b = s.bundle({
    args: ['/bin/true'],
    edit: (sp) => (sp.hooks = { poststop: [{ path: '/bin/false' }] } as Spec['hooks']),
  });
  const id = s.id();
  assert.equal((await rt.run(id, b.dir, { detach: true })).code, 0);
  await rt.waitStatus(id, 'stopped');
  await rt.delete(id);
  assert.notEqual((await rt.cmd(['state', id])).code, 0, 'the container is gone');
});
