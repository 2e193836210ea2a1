// 100 containers created and started through the API at once, all running, then removed with
// force at once: nothing may be left behind (monitors, mounts, cgroup dirs, state dirs).
// Root; only this test's containers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBerthd, berthdSkipReason, dockerCli, importBusybox, type Berthd } from './helpers/berthd.js';
import { describeLeaks, findLeaks } from './helpers/leaks.js';
import { netLeaks } from './helpers/net-leaks.js';
import { waitFor } from './helpers/runtime.js';

const skip = berthdSkipReason() || (dockerCli() ? false : 'no docker CLI installed');
const IMAGE = 'berth-test/busybox:scale';
const COUNT = 100;
let d: Berthd;

before(async () => {
  if (skip) return;
  d = await startBerthd({ label: 'scale' });
  await importBusybox(d, IMAGE);
  // The first container unpacks the imported layer; the race of first creates has its own test.
  const warm = await d.docker(['run', '--rm', IMAGE, 'true']);
  assert.equal(warm.code, 0, warm.stderr);
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
  const vethsBefore = readdirSync('/sys/class/net').filter((l) => l.startsWith('vberth'));
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
  // berthd itself, and its netns dir (a shared bind mount that stays for its next start).
  const netnsDir = join(d.runRoot, 'netns');
  const leaks = findLeaks({ paths: [d.root, d.runRoot], ids, roots: [] }).filter(
    (l) => !(l.kind === 'process' && l.key === String(d.pid())) && !(l.kind === 'mount' && l.key === netnsDir),
  );
  assert.deepEqual(leaks, [], describeLeaks(leaks));
  // Each container's veth goes with its network namespace, which the kernel frees in the background.
  await waitFor('every container network namespace and veth to be gone', () =>
    netLeaks({ linkPrefixes: ['vberth'], expectLinks: vethsBefore, netnsDirs: [netnsDir] }).length === 0 ? true : undefined,
  );
  assert.deepEqual(monitorsOf(ids), [], 'no berth-monitor or container process names a removed container');
  for (const dir of [join(d.root, 'containers'), join(d.runRoot, 'containers')]) {
    const entries = existsSync(dir) ? readdirSync(dir) : [];
    assert.deepEqual(entries.filter((e) => ids.includes(e)), [], `no state dir left in ${dir}`);
  }
});

test('20 foreground docker runs at once each print their whole output', { skip, timeout: 120_000 }, async () => {
  const runs = await Promise.all(
    Array.from({ length: 20 }, (_, i) => d.docker(['run', '--rm', ...(i % 2 ? ['-t'] : []), IMAGE, 'sh', '-c', `echo first${i}; echo err${i} >&2; echo last${i}`])),
  );
  const lost = runs
    .map((r, i) => ({ i, r, want: i % 2 ? `first${i}\r\nerr${i}\r\nlast${i}\r\n` : `first${i}\nlast${i}\n` }))
    .filter(({ r, want }) => r.code !== 0 || r.stdout !== want)
    .map(({ i, r }) => `run ${i}${i % 2 ? ' (-t)' : ''}: exit ${r.code} stdout ${JSON.stringify(r.stdout)}`);
  assert.deepEqual(lost, [], 'an attach made before start sees all output');
  const ps = await d.docker(['ps', '-aq']);
  assert.equal(ps.stdout.trim(), '', 'every --rm container is gone');
});

test('concurrent first creates of a freshly imported image all succeed (the layer unpacks once)', { skip, timeout: 60_000 }, async () => {
  const dir = join(d.work, 'fresh');
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
  symlinkSync('busybox', join(dir, 'bin', 'sh'));
  writeFileSync(join(dir, 'marker'), `${Date.now()}\n`);
  execFileSync('tar', ['-C', dir, '-cf', join(d.work, 'fresh.tar'), '.']);
  const imp = await d.docker(['import', join(d.work, 'fresh.tar'), 'berth-test/fresh:1']);
  assert.equal(imp.code, 0, imp.stderr);
  const creates = await Promise.all(Array.from({ length: 60 }, () => d.api('POST', '/containers/create', { Image: 'berth-test/fresh:1', Cmd: ['/bin/sh', '-c', 'true'] })));
  const failed = creates.filter((r) => r.status !== 201).map((r) => `${r.status} ${r.body.toString('utf8')}`);
  for (const r of creates.filter((c) => c.status === 201)) await d.api('DELETE', `/containers/${r.json<{ Id: string }>().Id}`);
  assert.deepEqual(failed, []);
  assert.equal((await d.docker(['rmi', 'berth-test/fresh:1'])).code, 0);
});
