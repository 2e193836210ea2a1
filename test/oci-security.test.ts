// CVE-2024-21626 (leaked fds, cwd outside the rootfs) and CVE-2019-5736 (overwriting the
// runtime's binary through /proc/PID/exe), checked from inside the container.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, existsSync, openSync, closeSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { Suite, type ProbeReport } from './helpers/suite.js';
import { show, waitFor, NATIVE_BUILD, REPO } from './helpers/runtime.js';

const s = new Suite('secu');
const rt = s.rt;
after(() => s.assertClean());

test('only fds 0, 1 and 2 are open in the container process', async () => {
  const { report } = await s.probe();
  assert.deepEqual(report.fds.map((f) => f.fd), [0, 1, 2], JSON.stringify(report.fds));
});

test('only 0, 1, 2 are open in an exec process', async () => {
  const b = s.bundle({ args: ['/probe', 'sleep', '60'] });
  const id = s.id();
  assert.equal((await rt.run(id, b.dir, { detach: true })).code, 0);
  const r = await rt.exec(id, ['/probe', 'fds']);
  assert.equal(r.code, 0, show(r));
  const fds = (JSON.parse(r.stdout) as { fds: { fd: number; target: string }[] }).fds;
  assert.deepEqual(fds.map((f) => f.fd), [0, 1, 2], JSON.stringify(fds));
  assert.equal((await rt.delete(id, { force: true })).code, 0);
});

test('--preserve-fds passes exactly the extra fds', async () => {
  const b = s.bundle({ args: ['/probe', 'report'] });
  const extra = openSync(join(b.rootfs, 'etc', 'hostname'), 'r');
  try {
    const r = await rt.run(s.id(), b.dir, { preserveFds: 1, extraFds: [extra] });
    assert.equal(r.code, 0, show(r));
    const report = JSON.parse(r.stdout) as ProbeReport;
    assert.deepEqual(report.fds.map((f) => f.fd), [0, 1, 2, 3], JSON.stringify(report.fds));
    assert.match(report.fds[3]!.target, /etc\/hostname$/);
  } finally {
    closeSync(extra);
  }
});

test('a cwd through /proc/self/fd/N never lands outside the rootfs (CVE-2024-21626)', async () => {
  for (const n of [3, 4, 5, 6, 7, 8, 9, 10]) {
    const b = s.bundle({ args: ['/probe', 'report'], edit: (sp) => (sp.process!.cwd = `/proc/self/fd/${n}`) });
    const r = await rt.run(s.id(), b.dir);
    if (r.code !== 0) continue; // refusing is the safe answer
    const report = JSON.parse(r.stdout) as ProbeReport;
    assert.equal(typeof report.cwd, 'string', `getcwd works (not unreachable): ${JSON.stringify(report.cwd)}`);
    assert.ok(!String(report.cwd).startsWith('(unreachable)'), `fd ${n}: cwd ${report.cwd}`);
    assert.deepEqual(report.fds.map((f) => f.fd), [0, 1, 2]);
  }
});

test('exec --cwd through /proc/self/fd/N never lands outside the rootfs', async () => {
  const b = s.bundle({ args: ['/probe', 'sleep', '60'] });
  const id = s.id();
  assert.equal((await rt.run(id, b.dir, { detach: true })).code, 0);
  for (const n of [3, 4, 5, 6, 7, 8]) {
    const r = await rt.exec(id, ['/probe', 'report'], { cwdInside: `/proc/self/fd/${n}` });
    if (r.code !== 0) continue;
    const report = JSON.parse(r.stdout) as ProbeReport;
    assert.ok(typeof report.cwd === 'string' && !report.cwd.startsWith('(unreachable)'), `fd ${n}: cwd ${JSON.stringify(report.cwd)}`);
  }
  assert.equal((await rt.delete(id, { force: true })).code, 0);
});

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

test("the container cannot open the runtime's binaries for writing through /proc/PID/exe (CVE-2019-5736)", async () => {
  const binaries = [process.execPath, join(NATIVE_BUILD, 'berth-exec'), realpathSync(rt.bin), join(REPO, 'bin', 'berth-oci')].filter((p) => existsSync(p));
  const before = new Map(binaries.map((p) => [p, sha256(p)]));
  const b = s.bundle({ args: ['/probe', 'write-exe', '--seconds', '6', '--out', '/out/result.json'] });
  const out = b.hostDir('out');
  b.spec.mounts!.push({ destination: '/out', type: 'bind', source: out, options: ['bind', 'rw'] });
  b.save();
  const id = s.id();
  const r = await rt.run(id, b.dir, { detach: true });
  assert.equal(r.code, 0, show(r));
  let execs = 0;
  const deadline = Date.now() + 4000;
  while (Date.now() < deadline) {
    const e = await rt.exec(id, ['/probe', 'exit', '0']);
    assert.equal(e.code, 0, show(e));
    execs++;
  }
  assert.ok(execs >= 3, `ran ${execs} execs`);
  const result = await waitFor(
    'write-exe result',
    () => {
      try {
        return JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { successes: unknown[]; attempts: number; held: number };
      } catch {
        return undefined;
      }
    },
    20_000,
  );
  assert.deepEqual(result.successes, [], 'no /proc/PID/exe was writable');
  assert.ok(result.attempts > 0);
  for (const [p, h] of before) assert.equal(sha256(p), h, `${p} unchanged`);
  await rt.waitStatus(id, 'stopped');
  assert.equal((await rt.delete(id)).code, 0);
});
