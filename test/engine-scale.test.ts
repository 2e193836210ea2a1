// 100 containers created and started through the API at once, all running, then removed with
// force at once: nothing may be left behind (monitors, mounts, cgroup dirs, state dirs).
// Root; only this test's containers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBerthd, berthdSkipReason, dockerCli, importBusybox, type Berthd } from './helpers/berthd.js';
import { describeLeaks, findLeaks } from './helpers/leaks.js';
import { waitFor } from './helpers/runtime.js';

const skip = berthdSkipReason() || (dockerCli() ? false : 'no docker CLI installed');
const IMAGE = 'berth-test/busybox:scale';
const COUNT = 100;
let d: Berthd;

before(async () => {
  if (skip) return;
  d = await startBerthd({ label: 'scale' });
  await importBusybox(d, IMAGE);
});

after(async () => {
  if (skip) return;
  assert.deepEqual(await d.stop(), []);
});

/** Runs `fn` over items with at most `width` in flight. */
async function inParallel<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}

function monitorsOf(ids: string[]): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (ids.some((id) => cmd.includes(id))) pids.push(Number(name));
  }
  return pids;
}

test(`${COUNT} containers started in parallel all run, and rm -f of all of them leaves nothing`, { skip, timeout: 240_000 }, async () => {
  const names = Array.from({ length: COUNT }, (_, i) => `scale-${i}`);
  const ids = await inParallel(names, COUNT, async (name) => {
    const c = await d.api('POST', `/containers/create?name=${name}`, { Image: IMAGE, Cmd: ['sh', '-c', `echo ${name}; exec sleep 600`], Labels: { scale: '1' } });
    assert.equal(c.status, 201, `create ${name}: ${c.body.toString('utf8')}`);
    const id = c.json<{ Id: string }>().Id;
    const s = await d.api('POST', `/containers/${id}/start`);
    assert.equal(s.status, 204, `start ${name}: ${s.body.toString('utf8')}`);
    return id;
  });
  assert.equal(new Set(ids).size, COUNT, 'every container has its own id');

  const running = await d.api('GET', `/containers/json?filters=${encodeURIComponent('{"label":["scale=1"],"status":["running"]}')}`);
  assert.equal(running.status, 200);
  assert.equal(running.json<unknown[]>().length, COUNT, 'all containers are running');
  const ps = await d.docker(['ps', '-q', '--no-trunc']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.deepEqual(ps.stdout.trim().split('\n').sort(), [...ids].sort());

  // Spot-check that each container really is separate: its own pid 1 and its own log.
  for (const i of [0, 49, 99]) {
    const top = await d.api('GET', `/containers/${ids[i]}/top`);
    assert.equal(top.status, 200, top.body.toString('utf8'));
    assert.match(JSON.stringify(top.json()), /sleep 600/);
    await waitFor(`the log of scale-${i}`, async () => ((await d.docker(['logs', `scale-${i}`])).stdout === `scale-${i}\n` ? true : undefined));
  }

  const removed = await Promise.all(ids.map((id) => d.api('DELETE', `/containers/${id}?force=1`)));
  removed.forEach((r, i) => assert.equal(r.status, 204, `rm -f ${names[i]}: ${r.status} ${r.body.toString('utf8')}`));

  const left = await d.api('GET', '/containers/json?all=1');
  assert.deepEqual(left.json(), [], 'no container is listed after rm -f');
  // berthd itself names the roots on its command line and stays up.
  const leaks = findLeaks({ paths: [d.root, d.runRoot], ids, roots: [] }).filter((l) => !(l.kind === 'process' && l.key === String(d.pid())));
  assert.deepEqual(leaks, [], describeLeaks(leaks));
  assert.deepEqual(monitorsOf(ids), [], 'no berth-monitor or container process names a removed container');
  for (const dir of [join(d.root, 'containers'), join(d.runRoot, 'containers')]) {
    const entries = existsSync(dir) ? readdirSync(dir) : [];
    assert.deepEqual(entries.filter((e) => ids.includes(e)), [], `no state dir left in ${dir}`);
  }
});
