// berthd driven by the real docker CLI: images, run (foreground, detached, --rm), ps, logs,
// exec, stop/kill/restart, inspect, wait, restart policies, cp, volumes, and live-restore
// (berthd killed with SIGKILL while containers run). Root; only this test's containers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerthd, berthdSkipReason, dockerCli, type Berthd } from './helpers/berthd.js';
import { makeRootfs } from './helpers/bundle.js';
import { sleep, show, waitFor } from './helpers/runtime.js';

const skip = berthdSkipReason() || (dockerCli() ? false : 'no docker CLI installed');
const IMAGE = 'berth-test/busybox:1';
let d: Berthd;

/** The docker CLI prints create's warnings (no bridge network until issue 5) on stderr. */
function withoutWarnings(text: string): string {
  return text.replace(/^WARNING: .*\n/gm, '');
}
let work: string;

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'engine-docker-'));
  const rootfs = join(work, 'rootfs');
  makeRootfs(rootfs);
  execFileSync('tar', ['-C', rootfs, '-cf', join(work, 'rootfs.tar'), '.']);
  d = await startBerthd({ label: 'docker' });
  const r = await d.docker(['import', '--change', 'CMD ["/bin/sh"]', join(work, 'rootfs.tar'), IMAGE]);
  assert.equal(r.code, 0, show(r));
});

after(async () => {
  if (skip) return;
  const problems = await d.stop();
  rmSync(work, { recursive: true, force: true });
  assert.deepEqual(problems, []);
});

test('docker version and info talk to berthd', { skip }, async () => {
  const v = await d.docker(['version', '--format', '{{.Server.Version}} {{.Server.APIVersion}}']);
  assert.equal(v.code, 0, show(v));
  assert.match(v.stdout, /^0\.1\.0 1\.4\d/);
  const i = await d.docker(['info', '--format', '{{.Driver}} {{.OSType}}']);
  assert.equal(i.code, 0, show(i));
  assert.equal(i.stdout.trim(), 'overlay linux');
});

test('docker run prints the output and returns the exit code', { skip }, async () => {
  const r = await d.docker(['run', '--rm', IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.code, 3, show(r));
  assert.equal(r.stdout, 'out\n');
  assert.equal(withoutWarnings(r.stderr), 'err\n');
  const ps = await d.docker(['ps', '-aq']);
  assert.equal(ps.stdout.trim(), '', 'the --rm container is gone');
});

test('docker run -i passes stdin through', { skip }, async () => {
  const r = await d.docker(['run', '--rm', '-i', IMAGE, 'sh', '-c', 'read line; echo "got $line"'], { input: 'hello\n' });
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, 'got hello\n');
});

test('detached container: ps, logs, exec, inspect, stop, rm', { skip }, async () => {
  const run = await d.docker(['run', '-d', '--name', 'web', '-e', 'GREETING=hi', IMAGE, 'sh', '-c', 'echo "$GREETING from $(hostname)"; trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done']);
  assert.equal(run.code, 0, show(run));
  const id = run.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const ps = await d.docker(['ps', '--format', '{{.Names}} {{.Status}}']);
  assert.match(ps.stdout, /^web Up /m);
  await waitFor('the first log line', async () => ((await d.docker(['logs', 'web'])).stdout.includes('hi from') ? true : undefined));
  const logs = await d.docker(['logs', 'web']);
  assert.equal(logs.stdout, `hi from ${id.slice(0, 12)}\n`);
  const ex = await d.docker(['exec', 'web', 'sh', '-c', 'echo $GREETING; exit 4']);
  assert.equal(ex.code, 4, show(ex));
  assert.equal(ex.stdout, 'hi\n');
  const state = await d.docker(['inspect', '-f', '{{.State.Status}} {{.State.Running}} {{.Name}}', 'web']);
  assert.equal(state.stdout.trim(), 'running true /web');
  const stop = await d.docker(['stop', '-t', '5', 'web']);
  assert.equal(stop.code, 0, show(stop));
  const after = await d.docker(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'web']);
  assert.equal(after.stdout.trim(), 'exited 0');
  assert.match((await d.docker(['logs', 'web'])).stdout, /bye\n$/);
  const rm = await d.docker(['rm', 'web']);
  assert.equal(rm.code, 0, show(rm));
  const gone = await d.docker(['inspect', 'web']);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /No such (container|object)/i);
});

test('stop escalates to SIGKILL after the timeout', { skip }, async () => {
  const run = await d.docker(['run', '-d', '--name', 'stubborn', IMAGE, 'sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done']);
  assert.equal(run.code, 0, show(run));
  const stop = await d.docker(['stop', '-t', '1', 'stubborn']);
  assert.equal(stop.code, 0, show(stop));
  const code = await d.docker(['inspect', '-f', '{{.State.ExitCode}}', 'stubborn']);
  assert.equal(code.stdout.trim(), '137');
  assert.equal((await d.docker(['rm', 'stubborn'])).code, 0);
});

test('restart policy on-failure restarts, then gives up', { skip }, async () => {
  const run = await d.docker(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', IMAGE, 'sh', '-c', 'exit 1']);
  assert.equal(run.code, 0, show(run));
  await waitFor(
    'two restarts then exited',
    async () => {
      const r = await d.docker(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'flaky']);
      return r.stdout.trim() === '2 exited' ? true : undefined;
    },
    20_000,
  );
  assert.equal((await d.docker(['rm', 'flaky'])).code, 0);
});

test('a name in use, a missing image, a missing container: clear errors', { skip }, async () => {
  const a = await d.docker(['create', '--name', 'dup', IMAGE]);
  assert.equal(a.code, 0, show(a));
  const b = await d.docker(['create', '--name', 'dup', IMAGE]);
  assert.notEqual(b.code, 0);
  assert.match(b.stderr, /already in use/);
  const c = await d.docker(['run', '--rm', '--pull', 'never', 'nosuch/image:1', 'true']);
  assert.equal(c.code, 125, show(c));
  assert.match(c.stderr, /No such image/i);
  const e = await d.docker(['stop', 'nosuchcontainer']);
  assert.notEqual(e.code, 0);
  assert.match(e.stderr, /No such container: nosuchcontainer/);
  const f = await d.docker(['run', '--rm', IMAGE, '/nonexistent']);
  assert.equal(f.code, 127, show(f));
  assert.equal((await d.docker(['rm', 'dup'])).code, 0);
});

test('docker cp both ways', { skip }, async () => {
  const run = await d.docker(['run', '-d', '--name', 'cp', IMAGE, 'sleep', '60']);
  assert.equal(run.code, 0, show(run));
  const src = join(work, 'in.txt');
  writeFileSync(src, 'copied in\n');
  const cpIn = await d.docker(['cp', src, 'cp:/tmp/in.txt']);
  assert.equal(cpIn.code, 0, show(cpIn));
  const cat = await d.docker(['exec', 'cp', 'cat', '/tmp/in.txt']);
  assert.equal(cat.stdout, 'copied in\n');
  const out = join(work, 'out');
  const cpOut = await d.docker(['cp', 'cp:/etc/passwd', out]);
  assert.equal(cpOut.code, 0, show(cpOut));
  assert.match(readFileSync(out, 'utf8'), /^root:x:0:0/);
  assert.equal((await d.docker(['rm', '-f', 'cp'])).code, 0);
});

test('named volumes keep data across containers', { skip }, async () => {
  const w = await d.docker(['run', '--rm', '-v', 'data:/data', IMAGE, 'sh', '-c', 'echo kept > /data/f']);
  assert.equal(w.code, 0, show(w));
  const r = await d.docker(['run', '--rm', '-v', 'data:/data', IMAGE, 'cat', '/data/f']);
  assert.equal(r.stdout, 'kept\n', show(r));
  const ls = await d.docker(['volume', 'ls', '-q']);
  assert.match(ls.stdout, /^data$/m);
  assert.equal((await d.docker(['volume', 'rm', 'data'])).code, 0);
});

test('live-restore: berthd killed with SIGKILL, containers keep running, logs and exit codes intact', { skip }, async () => {
  const run = await d.docker(['run', '-d', '--name', 'survivor', IMAGE, 'sh', '-c', 'echo before; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after; exit 5']);
  assert.equal(run.code, 0, show(run));
  await waitFor('the first line', async () => ((await d.docker(['logs', 'survivor'])).stdout.includes('before') ? true : undefined));
  await d.kill();
  await sleep(200);
  await d.restart();
  const st = await d.docker(['inspect', '-f', '{{.State.Status}}', 'survivor']);
  assert.equal(st.stdout.trim(), 'running', show(st));
  const ex = await d.docker(['exec', 'survivor', 'touch', '/tmp/go']);
  assert.equal(ex.code, 0, show(ex));
  const wait = await d.docker(['wait', 'survivor']);
  assert.equal(wait.stdout.trim(), '5', show(wait));
  const logs = await d.docker(['logs', 'survivor']);
  assert.equal(logs.stdout, 'before\nafter\n');
  assert.equal((await d.docker(['rm', 'survivor'])).code, 0);
});

test('a container that exits while berthd is down gets its exit code at the next start', { skip }, async () => {
  const run = await d.docker(['run', '-d', '--name', 'whiledown', IMAGE, 'sh', '-c', 'sleep 0.5; exit 9']);
  assert.equal(run.code, 0, show(run));
  await d.kill();
  await sleep(1200);
  await d.restart();
  const st = await d.docker(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'whiledown']);
  assert.equal(st.stdout.trim(), 'exited 9', show(st));
  assert.equal((await d.docker(['rm', 'whiledown'])).code, 0);
});
