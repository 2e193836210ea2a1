// berthd driven by the real docker CLI through whole scenarios: restart policies (also across a
// simulated host reboot), health checks, logs, ttys, pause, top, stats, update, export, rename,
// events, prune, anonymous volumes, push/pull through a local registry, and Debian's older
// docker client. Root; only this test's containers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startBerthd, berthdSkipReason, dockerCli, importBusybox, type Berthd } from './helpers/berthd.js';
import { findLeaks } from './helpers/leaks.js';
import { registryUnavailable, startRegistry } from './helpers/registry.js';
import { runCommand, show, sleep, waitFor } from './helpers/runtime.js';

const skip = berthdSkipReason() || (dockerCli() ? false : 'no docker CLI installed');
const IMAGE = 'berth-test/busybox:life';
let d: Berthd;

before(async () => {
  if (skip) return;
  d = await startBerthd({ label: 'lifecycle' });
  await importBusybox(d, IMAGE);
});

after(async () => {
  if (skip) return;
  assert.deepEqual(await d.stop(), []);
});

async function ok(args: string[], opts?: { input?: string; cli?: string }): Promise<string> {
  const r = await d.docker(args, opts);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

async function inspect(format: string, name: string): Promise<string> {
  return (await ok(['inspect', '-f', format, name])).trim();
}

async function until(what: string, name: string, format: string, want: (v: string) => boolean, timeoutMs = 20_000): Promise<string> {
  let last = '';
  try {
    return await waitFor(
      what,
      async () => {
        last = (await d.docker(['inspect', '-f', format, name])).stdout.trim();
        return want(last) ? last : undefined;
      },
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message} (last ${format} of ${name}: ${JSON.stringify(last)})`);
  }
}

/** Seconds since the epoch, for `docker events --since/--until`. */
function now(): number {
  return Math.floor(Date.now() / 1000);
}

// --- restart policies ---

test('restart always: a container that exits by itself is restarted and RestartCount grows', { skip }, async () => {
  await ok(['run', '-d', '--name', 'always', '--restart', 'always', IMAGE, 'sh', '-c', 'echo started; sleep 0.3; exit 2']);
  await until('two restarts', 'always', '{{.RestartCount}}', (v) => Number(v) >= 2);
  const logs = await ok(['logs', 'always']);
  assert.ok(logs.split('\n').filter((l) => l === 'started').length >= 2, `one log line per run: ${logs}`);
  await ok(['rm', '-f', 'always']);
});

test('restart always: pid 1 made to exit from inside is restarted; docker stop stops it for good', { skip }, async () => {
  await ok(['run', '-d', '--name', 'killed', '--restart', 'always', IMAGE, 'sh', '-c', 'trap "exit 3" USR1; trap "exit 0" TERM; while true; do sleep 0.1; done']);
  const pid1 = await inspect('{{.State.Pid}}', 'killed');
  // pid 1 only gets signals it handles from inside its pid namespace.
  await ok(['exec', 'killed', 'kill', '-USR1', '1']);
  await until('a restart after the exit', 'killed', '{{.RestartCount}} {{.State.Status}}', (v) => v === '1 running');
  assert.notEqual(await inspect('{{.State.Pid}}', 'killed'), pid1);
  await ok(['stop', '-t', '5', 'killed']);
  await sleep(500);
  assert.equal(await inspect('{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}', 'killed'), 'exited 0 1', 'a stopped container is not restarted');
  await ok(['rm', 'killed']);
});

test('restart unless-stopped: docker stop keeps it stopped; docker restart brings it back', { skip }, async () => {
  await ok(['run', '-d', '--name', 'unless', '--restart', 'unless-stopped', IMAGE, 'sleep', '600']);
  const pid = await inspect('{{.State.Pid}}', 'unless');
  await ok(['stop', '-t', '1', 'unless']);
  await sleep(500);
  assert.equal(await inspect('{{.State.Status}}', 'unless'), 'exited');
  await ok(['restart', '-t', '1', 'unless']);
  assert.equal(await inspect('{{.State.Status}}', 'unless'), 'running');
  assert.notEqual(await inspect('{{.State.Pid}}', 'unless'), pid);
  const pid2 = await inspect('{{.State.Pid}}', 'unless');
  await ok(['restart', '-t', '1', 'unless']);
  assert.equal(await inspect('{{.State.Status}}', 'unless'), 'running', 'restart of a running container');
  assert.notEqual(await inspect('{{.State.Pid}}', 'unless'), pid2);
  await ok(['rm', '-f', 'unless']);
});

test('host reboot (berthd, monitors and containers all killed): always comes back, no stays exited', { skip }, async () => {
  await ok(['run', '-d', '--name', 'boot-always', '--restart', 'always', IMAGE, 'sleep', '600']);
  await ok(['run', '-d', '--name', 'boot-unless', '--restart', 'unless-stopped', IMAGE, 'sleep', '600']);
  await ok(['run', '-d', '--name', 'boot-no', IMAGE, 'sleep', '600']);
  await ok(['run', '-d', '--name', 'boot-stopped', '--restart', 'always', IMAGE, 'sleep', '600']);
  await ok(['stop', '-t', '1', 'boot-stopped']);
  const ids = (await ok(['ps', '-aq', '--no-trunc'])).trim().split('\n');
  assert.equal(ids.length, 4);
  await d.kill();
  // Everything that held a container up: monitors, inits, the containers' processes.
  const procs = findLeaks({ paths: [], ids, roots: [] }).filter((l) => l.kind === 'process');
  assert.ok(procs.length >= 3, `monitors and containers found: ${procs.map((p) => p.what).join('\n')}`);
  for (const p of procs) {
    try {
      process.kill(Number(p.key), 'SIGKILL');
    } catch {
      // already gone with its parent
    }
  }
  await waitFor('the killed processes to be gone', () => (findLeaks({ paths: [], ids, roots: [] }).some((l) => l.kind === 'process') ? undefined : true));
  await d.restart();
  await until('boot-always running again', 'boot-always', '{{.State.Status}}', (v) => v === 'running');
  await until('boot-unless running again', 'boot-unless', '{{.State.Status}}', (v) => v === 'running');
  assert.equal(await inspect('{{.State.Status}}', 'boot-no'), 'exited');
  assert.equal(await inspect('{{.State.Status}}', 'boot-stopped'), 'exited', 'a container stopped by the user stays stopped');
  const ex = await d.docker(['exec', 'boot-always', 'echo', 'alive']);
  assert.equal(ex.stdout, 'alive\n', show(ex));
  assert.equal((await d.docker(['start', 'boot-no'])).code, 0, 'an exited container starts again after the reboot');
  for (const n of ['boot-always', 'boot-unless', 'boot-no', 'boot-stopped']) await ok(['rm', '-f', n]);
});

// --- health checks ---

test('health: starting → unhealthy → healthy, in inspect, ps and events', { skip }, async () => {
  const since = now();
  await ok(['run', '-d', '--name', 'doc', '--health-cmd', 'test -e /tmp/ok', '--health-interval', '200ms', '--health-retries', '2', IMAGE, 'sleep', '600']);
  const first = await inspect('{{.State.Health.Status}}', 'doc');
  assert.ok(['starting', 'unhealthy'].includes(first), first);
  await until('unhealthy', 'doc', '{{.State.Health.Status}}', (v) => v === 'unhealthy');
  assert.ok(Number(await inspect('{{.State.Health.FailingStreak}}', 'doc')) >= 2);
  assert.match(await ok(['ps', '--filter', 'health=unhealthy', '--format', '{{.Names}} {{.Status}}']), /^doc Up .*\(unhealthy\)$/m);
  await ok(['exec', 'doc', 'touch', '/tmp/ok']);
  await until('healthy', 'doc', '{{.State.Health.Status}}', (v) => v === 'healthy');
  assert.equal(await inspect('{{.State.Health.FailingStreak}}', 'doc'), '0');
  assert.equal(await inspect('{{(index .State.Health.Log 0).ExitCode}}', 'doc') !== '', true);
  const events = await ok(['events', '--since', String(since), '--until', String(now() + 1), '--filter', 'container=doc', '--filter', 'event=health_status', '--format', '{{.Action}}']);
  const actions = events.trim().split('\n');
  assert.ok(actions.includes('health_status: unhealthy'), events);
  assert.equal(actions.at(-1), 'health_status: healthy', events);
  await ok(['rm', '-f', 'doc']);
});

test('health checks resume after berthd restarts', { skip }, async () => {
  await ok(['run', '-d', '--name', 'doc2', '--health-cmd', 'test -e /tmp/ok', '--health-interval', '200ms', '--health-retries', '1', IMAGE, 'sh', '-c', 'touch /tmp/ok; exec sleep 600']);
  await until('healthy', 'doc2', '{{.State.Health.Status}}', (v) => v === 'healthy');
  await d.kill();
  await d.restart();
  await ok(['exec', 'doc2', 'rm', '/tmp/ok']);
  await until('unhealthy after the restart', 'doc2', '{{.State.Health.Status}}', (v) => v === 'unhealthy');
  await ok(['rm', '-f', 'doc2']);
  // A check in flight when the container died cleans up when its monitor reports the exit.
  await waitFor('no health-check exec run dir', () => ((existsSync(join(d.runRoot, 'exec')) ? readdirSync(join(d.runRoot, 'exec')) : []).length === 0 ? true : undefined), 5_000);
});

test('health: --no-healthcheck means no health state', { skip }, async () => {
  await ok(['run', '-d', '--name', 'nohc', '--no-healthcheck', IMAGE, 'sleep', '600']);
  assert.equal(await inspect('{{if .State.Health}}has{{else}}none{{end}}', 'nohc'), 'none');
  await ok(['rm', '-f', 'nohc']);
});

// --- logs ---

test('logs: stdout/stderr separation, --tail, --timestamps, --since, -f ends when the container stops', { skip }, async () => {
  await ok(['run', '-d', '--name', 'talker', IMAGE, 'sh', '-c', 'for i in 1 2 3 4 5; do echo out$i; sleep 0.05; echo err$i >&2; sleep 0.05; done; while [ ! -e /tmp/more ]; do sleep 0.1; done; echo late; while [ ! -e /tmp/end ]; do sleep 0.1; done']);
  await waitFor('all early lines', async () => ((await d.docker(['logs', 'talker'])).stderr.includes('err5') ? true : undefined));
  const all = await d.docker(['logs', 'talker']);
  assert.equal(all.stdout, 'out1\nout2\nout3\nout4\nout5\n');
  assert.equal(all.stderr, 'err1\nerr2\nerr3\nerr4\nerr5\n');
  const tail = await d.docker(['logs', '--tail', '2', 'talker']);
  assert.equal(tail.stdout, 'out5\n', show(tail));
  assert.equal(tail.stderr, 'err5\n', show(tail));
  const ts = await d.docker(['logs', '--timestamps', '--tail', '2', 'talker']);
  assert.match(ts.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z out5\n$/, show(ts));
  assert.match(ts.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z err5\n$/, show(ts));
  await sleep(1100);
  const mark = now();
  await ok(['exec', 'talker', 'touch', '/tmp/more']);
  await waitFor('the late line', async () => ((await d.docker(['logs', 'talker'])).stdout.includes('late') ? true : undefined));
  const since = await d.docker(['logs', '--since', String(mark), 'talker']);
  assert.equal(since.stdout, 'late\n', show(since));
  assert.equal(since.stderr, '');
  const follow = d.docker(['logs', '-f', '--tail', '1', 'talker']);
  await sleep(500);
  await ok(['exec', 'talker', 'touch', '/tmp/end']);
  const f = await follow;
  assert.equal(f.code, 0, show(f));
  assert.equal(f.stdout, 'late\n', 'logs -f returns when the container stops');
  await ok(['rm', 'talker']);
});

test('logs: --log-driver none refuses docker logs with a clear error', { skip }, async () => {
  await ok(['run', '-d', '--name', 'silent', '--log-driver', 'none', IMAGE, 'sh', '-c', 'echo hidden; sleep 600']);
  const r = await d.docker(['logs', 'silent']);
  assert.notEqual(r.code, 0, show(r));
  assert.match(r.stderr, /none|logging driver|does not support/i);
  const bad = await d.docker(['run', '-d', '--log-driver', 'syslog', IMAGE, 'true']);
  assert.notEqual(bad.code, 0, show(bad));
  assert.match(bad.stderr, /syslog/);
  await ok(['rm', '-f', 'silent']);
});

// --- ttys and attach ---

test('exec -it allocates a tty; run -t output is raw; attach follows a running container', { skip }, async () => {
  await ok(['run', '-d', '--name', 'tty', IMAGE, 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done']);
  const docker = dockerCli()!;
  const env = { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: join(d.work, 'docker-config') };
  const it = await runCommand('script', ['-qc', `${docker} exec -it tty sh -c "tty; echo hi"`, '/dev/null'], d.work, { env, timeoutMs: 30_000 });
  assert.equal(it.code, 0, show(it));
  // script(1) forwards a NUL when its own stdin (/dev/null) ends; the exec's tty may echo it as ^@.
  assert.match(it.stdout.replaceAll('^@', ''), /^\/dev\/pts\/\d+\r\nhi\r\n/, `a tty: /dev/pts and CRLF line ends: ${JSON.stringify(it.stdout)}`);
  const noTty = await d.docker(['exec', 'tty', 'sh', '-c', 'tty || true']);
  assert.match(noTty.stdout, /not a tty/);

  const raw = await runCommand('script', ['-qc', `${docker} run --rm -t ${IMAGE} sh -c "echo out; echo err >&2; tty"`, '/dev/null'], d.work, { env, timeoutMs: 30_000 });
  assert.equal(raw.code, 0, show(raw));
  // Without -i the CLI leaves script's terminal cooked, which adds its own \r.
  assert.match(raw.stdout, /out\r+\nerr\r+\n\/dev\/pts\/\d+\r+\n/, `with -t both streams arrive raw on one tty: ${JSON.stringify(raw.stdout)}`);
  const piped = await d.docker(['run', '--rm', '-t', IMAGE, 'sh', '-c', 'printf "a\\nb\\n"']);
  assert.equal(piped.code, 0, show(piped));
  assert.equal(piped.stdout, 'a\r\nb\r\n', 'the tty turns \\n into \\r\\n and nothing is framed');

  const attach = spawn(docker, ['attach', '--no-stdin', 'tty'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  attach.stdout.on('data', (c: Buffer) => (seen += c.toString()));
  await waitFor('attached output', () => (/tick\d+\n.*tick\d+\n/s.test(seen) ? true : undefined));
  const exited = new Promise<number | null>((r) => attach.once('exit', (code) => r(code)));
  await ok(['kill', 'tty']);
  const code = await Promise.race([exited, sleep(10_000).then(() => 'stuck' as const)]);
  if (code === 'stuck') attach.kill('SIGKILL');
  assert.notEqual(code, 'stuck', 'docker attach returns when the container exits');
  assert.equal(code, 137, `attach exits with the container's status: ${seen.slice(-200)}`);
  await ok(['rm', 'tty']);
});

// --- pause, top, stats, update, export, rename ---

test('pause freezes, unpause thaws; top lists the processes', { skip }, async () => {
  await ok(['run', '-d', '--name', 'freezer', IMAGE, 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/t; sleep 0.05; done']);
  await ok(['pause', 'freezer']);
  assert.equal(await inspect('{{.State.Status}} {{.State.Paused}} {{.State.Running}}', 'freezer'), 'paused true true');
  assert.match(await ok(['ps', '--format', '{{.Names}} {{.Status}}']), /^freezer Up .*\(Paused\)$/m);
  const pid = Number(await inspect('{{.State.Pid}}', 'freezer'));
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  assert.match(st, /^State:\s+[SD]/m);
  const stat1 = readFileSync(`/proc/${pid}/stat`, 'utf8');
  await sleep(400);
  assert.equal(readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[13], stat1.split(' ')[13], 'no cpu time while frozen');
  const ex = await d.docker(['exec', 'freezer', 'true']);
  assert.notEqual(ex.code, 0, 'exec into a paused container is refused');
  assert.match(ex.stderr, /paused/i);
  const top = await ok(['top', 'freezer']);
  assert.match(top, /PID/);
  assert.match(top, /while true/);
  await ok(['unpause', 'freezer']);
  assert.equal(await inspect('{{.State.Status}} {{.State.Paused}}', 'freezer'), 'running false');
  const a = await ok(['exec', 'freezer', 'cat', '/tmp/t']);
  await sleep(300);
  const b = await ok(['exec', 'freezer', 'cat', '/tmp/t']);
  assert.notEqual(a, b, 'the loop runs again');
  const topAux = await ok(['top', 'freezer', '-o', 'pid,comm']);
  assert.match(topAux, /COMMAND/);
  await ok(['rm', '-f', 'freezer']);
});

test('stats --no-stream has CPU and memory; update --memory changes the limit', { skip }, async () => {
  await ok(['run', '-d', '--name', 'busy', '--memory', '64m', IMAGE, 'sh', '-c', 'while true; do :; done']);
  await sleep(1000);
  const stats = await ok(['stats', '--no-stream', '--format', '{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}', 'busy']);
  const [name, cpu, mem, pids] = stats.trim().split('|');
  assert.equal(name, 'busy');
  assert.match(cpu!, /^\d+\.\d+%$/);
  assert.ok(parseFloat(cpu!) > 0, `a busy loop uses CPU: ${stats}`);
  assert.match(mem!, /^[\d.]+[KMG]?i?B \/ 64MiB$/, stats);
  assert.ok(Number(pids) >= 1, stats);
  await ok(['update', '--memory', '128m', '--memory-swap', '256m', 'busy']);
  assert.equal(await inspect('{{.HostConfig.Memory}}', 'busy'), String(128 << 20));
  const after = await ok(['stats', '--no-stream', '--format', '{{.MemUsage}}', 'busy']);
  assert.match(after, /\/ 128MiB/);
  const raw = await d.api('GET', '/containers/busy/stats?stream=0');
  const s = raw.json<{ memory_stats: { limit: number }; cpu_stats: { cpu_usage: { total_usage: number }; online_cpus: number } }>();
  assert.equal(s.memory_stats.limit, 128 << 20);
  assert.ok(s.cpu_stats.cpu_usage.total_usage > 0 && s.cpu_stats.online_cpus > 0);
  await ok(['rm', '-f', 'busy']);
});

test('export writes the filesystem as a tar; rename keeps the container', { skip }, async () => {
  await ok(['run', '-d', '--name', 'exp', IMAGE, 'sh', '-c', 'echo mark > /marker; sleep 600']);
  await waitFor('the marker', async () => ((await d.docker(['exec', 'exp', 'cat', '/marker'])).stdout === 'mark\n' ? true : undefined));
  const out = join(d.work, 'exp.tar');
  await ok(['export', '-o', out, 'exp']);
  const list = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n');
  assert.ok(list.some((l) => /^(\.\/)?bin\/busybox$/.test(l)), 'bin/busybox in the export');
  assert.ok(list.some((l) => /^(\.\/)?marker$/.test(l)), 'a file the container wrote is in the export');
  assert.equal(execFileSync('tar', ['-xOf', out, list.find((l) => /marker$/.test(l))!], { encoding: 'utf8' }), 'mark\n');
  const id = await inspect('{{.Id}}', 'exp');
  await ok(['rename', 'exp', 'exp2']);
  assert.equal(await inspect('{{.Id}} {{.Name}}', 'exp2'), `${id} /exp2`);
  assert.notEqual((await d.docker(['inspect', 'exp'])).code, 0);
  assert.equal((await ok(['exec', 'exp2', 'cat', '/marker'])), 'mark\n');
  await ok(['rm', '-f', 'exp2']);
});

test('docker kill and rm -f of a paused container end it', { skip }, async (t) => {
  // Thawed at the end whatever happened, so that a failure here does not leave a container no one can remove.
  t.after(async () => {
    for (const n of ['frozen-kill', 'frozen-rm']) {
      await d.docker(['unpause', n]);
      await d.docker(['rm', '-f', n]);
    }
  });
  await ok(['run', '-d', '--name', 'frozen-kill', IMAGE, 'sleep', '600']);
  await ok(['pause', 'frozen-kill']);
  const kill = await d.docker(['kill', 'frozen-kill'], { timeoutMs: 30_000 });
  assert.equal(kill.code, 0, show(kill));
  await until('exited after kill', 'frozen-kill', '{{.State.Status}}', (v) => v === 'exited', 10_000);
  assert.equal(await inspect('{{.State.ExitCode}}', 'frozen-kill'), '137');
  await ok(['rm', 'frozen-kill']);
  await ok(['run', '-d', '--name', 'frozen-rm', IMAGE, 'sleep', '600']);
  await ok(['pause', 'frozen-rm']);
  const rm = await d.docker(['rm', '-f', 'frozen-rm'], { timeoutMs: 30_000 });
  assert.equal(rm.code, 0, show(rm));
  assert.notEqual((await d.docker(['inspect', 'frozen-rm'])).code, 0);
});

// --- events, df, prune ---

test('events --since/--until show create, start, die, destroy in order', { skip }, async () => {
  const since = now();
  const r = await d.docker(['run', '--name', 'ev', IMAGE, 'sh', '-c', 'exit 4']);
  assert.equal(r.code, 4, show(r));
  // Not named ev-something: Docker's container filter matches names by prefix.
  await ok(['run', '--name', 'other', IMAGE, 'true']);
  await ok(['rm', 'ev']);
  await ok(['rm', 'other']);
  await sleep(1100);
  const out = await ok(['events', '--since', String(since), '--until', String(now()), '--filter', 'container=ev', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}']);
  const lines = out.trim().split('\n').map((l) => l.trim());
  const actions = lines.map((l) => l.split(' ')[1]);
  for (const a of ['create', 'start', 'die', 'destroy']) assert.ok(actions.includes(a), `${a} in ${out}`);
  assert.ok(actions.indexOf('create') < actions.indexOf('start') && actions.indexOf('start') < actions.indexOf('die') && actions.indexOf('die') < actions.indexOf('destroy'), out);
  assert.ok(lines.includes('container die ev 4'), `die carries the exit code: ${out}`);
  assert.ok(lines.every((l) => / ev( |$)/.test(l)), `only ev's events: ${out}`);
  const json = await ok(['events', '--since', String(since), '--until', String(now()), '--filter', 'event=destroy', '--filter', 'container=ev', '--filter', 'container=other', '--format', '{{json .}}']);
  const destroyed = json.trim().split('\n').map((l) => (JSON.parse(l) as { Actor: { Attributes: { name: string } } }).Actor.Attributes.name);
  assert.deepEqual(destroyed, ['ev', 'other'], json);
});

test('system df, container prune, volume prune, image prune', { skip }, async () => {
  await ok(['run', '--name', 'done1', '-v', 'prunable:/data', IMAGE, 'true']);
  await ok(['run', '-d', '--name', 'live', IMAGE, 'sleep', '600']);
  await ok(['tag', IMAGE, 'berth-test/extra:1']);
  await importBusybox(d, 'berth-test/unused:1', ['CMD ["/bin/true"]']);
  const all = (await ok(['ps', '-aq'])).trim().split('\n').length;
  const up = (await ok(['ps', '-q'])).trim().split('\n').length;
  const volumes = (await ok(['volume', 'ls', '-q'])).trim().split('\n').length;
  const df = await ok(['system', 'df', '--format', '{{.Type}} {{.TotalCount}} {{.Active}}']);
  assert.match(df, /^Images [1-9]\d* [1-9]\d*$/m, df);
  assert.match(df, new RegExp(`^Containers ${all} ${up}$`, 'm'), df);
  assert.match(df, new RegExp(`^Local Volumes ${volumes} \\d+$`, 'm'), df);
  const verbose = await ok(['system', 'df', '-v']);
  assert.match(verbose, /done1/);
  assert.match(verbose, /prunable/);
  const cp = await ok(['container', 'prune', '-f']);
  assert.match(cp, /done1|[0-9a-f]{64}/);
  assert.notEqual((await d.docker(['inspect', 'done1'])).code, 0, 'the exited container is gone');
  assert.equal(await inspect('{{.State.Status}}', 'live'), 'running', 'the running one stays');
  const vp = await ok(['volume', 'prune', '-f', '--all']);
  assert.match(vp, /prunable/);
  assert.doesNotMatch(await ok(['volume', 'ls', '-q']), /prunable/);
  const ip = await d.docker(['image', 'prune', '-f', '-a']);
  assert.equal(ip.code, 0, show(ip));
  assert.match(await ok(['images', '--format', '{{.Repository}}:{{.Tag}}']), new RegExp(`^${IMAGE}$`, 'm'), 'an image in use survives prune -a');
  const images = await ok(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.match(images, /berth-test\/extra:1/, 'another tag of an image in use stays (Docker prunes by image)');
  assert.doesNotMatch(images, /berth-test\/unused:1/, 'prune -a removes an image no container uses');
  await ok(['rmi', 'berth-test/extra:1']);
  await ok(['rm', '-f', 'live']);
});

test('rm -v removes the anonymous volumes of an image VOLUME, keeps named ones', { skip }, async () => {
  await importBusybox(d, 'berth-test/withvol:1', ['CMD ["/bin/sh"]', 'VOLUME /data']);
  await ok(['run', '--name', 'anon', '-v', 'named:/named', 'berth-test/withvol:1', 'sh', '-c', 'echo x > /data/f; echo y > /named/f']);
  const anon = await inspect('{{range .Mounts}}{{if eq .Destination "/data"}}{{.Name}}{{end}}{{end}}', 'anon');
  assert.match(anon, /^[0-9a-f]{64}$/);
  const vols = (await ok(['volume', 'ls', '-q'])).trim().split('\n');
  assert.ok(vols.includes(anon) && vols.includes('named'), vols.join(','));
  assert.equal(await inspect('{{range .Mounts}}{{if eq .Destination "/data"}}{{.Type}}{{end}}{{end}}', 'anon'), 'volume');
  await ok(['rm', '-v', 'anon']);
  const left = (await ok(['volume', 'ls', '-q'])).trim().split('\n');
  assert.ok(!left.includes(anon), 'the anonymous volume is gone');
  assert.ok(left.includes('named'), 'the named volume stays');
  await ok(['volume', 'rm', 'named']);
  await ok(['rmi', 'berth-test/withvol:1']);
});

// --- registry ---

test('push to and pull from a local registry through the docker CLI, then run the pulled image', { skip: skip || registryUnavailable() || false }, async () => {
  const reg = await startRegistry();
  try {
    const ref = `${reg.host}/berth-test/pushed:1`;
    await ok(['tag', IMAGE, ref]);
    const push = await d.docker(['push', ref]);
    assert.equal(push.code, 0, `${show(push)}\nregistry: ${reg.log().slice(-2000)}`);
    assert.match(push.stdout, /1: digest: sha256:[0-9a-f]{64}/);
    const id = await ok(['image', 'inspect', '-f', '{{.Id}}', ref]);
    await ok(['rmi', ref]);
    assert.notEqual((await d.docker(['image', 'inspect', ref])).code, 0);
    const pull = await d.docker(['pull', ref]);
    assert.equal(pull.code, 0, show(pull));
    assert.match(pull.stdout, /Status: (Downloaded newer image|Image is up to date) for/);
    assert.equal(await ok(['image', 'inspect', '-f', '{{.Id}}', ref]), id, 'the same image comes back');
    const run = await d.docker(['run', '--rm', ref, 'echo', 'pulled']);
    assert.equal(run.stdout, 'pulled\n', show(run));
    const missing = await d.docker(['pull', `${reg.host}/berth-test/nosuch:1`]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /not found|unknown|No such/i);
    await ok(['rmi', ref]);
  } finally {
    await reg.stop();
  }
});

// --- Debian's docker 20.10 client ---

test("Debian's docker 20.10 client: run --rm, ps, logs, exec", { skip: skip || (existsSync('/usr/bin/docker') ? false : 'no /usr/bin/docker') }, async () => {
  const cli = '/usr/bin/docker';
  const run = await d.docker(['run', '--rm', IMAGE, 'sh', '-c', 'echo old; echo olderr >&2; exit 6'], { cli });
  assert.equal(run.code, 6, show(run));
  assert.equal(run.stdout, 'old\n');
  assert.match(run.stderr, /olderr\n$/);
  await ok(['run', '-d', '--name', 'old', IMAGE, 'sh', '-c', 'echo from-old; sleep 600'], { cli });
  assert.match(await ok(['ps', '--format', '{{.Names}} {{.Status}}'], { cli }), /^old Up /m);
  await waitFor('the old client sees the log', async () => ((await d.docker(['logs', 'old'], { cli })).stdout === 'from-old\n' ? true : undefined));
  const ex = await d.docker(['exec', 'old', 'sh', '-c', 'echo in-old; exit 3'], { cli });
  assert.equal(ex.code, 3, show(ex));
  assert.equal(ex.stdout, 'in-old\n');
  const input = await d.docker(['exec', '-i', 'old', 'cat'], { cli, input: 'piped\n' });
  assert.equal(input.stdout, 'piped\n', show(input));
  await ok(['rm', '-f', 'old'], { cli });
});

// --- options that reach the container ---

test('run options reach the container: -u, -w, --hostname, --read-only, --tmpfs, --init, --cap-drop, -e', { skip }, async () => {
  const r = await d.docker([
    'run', '--rm', '-u', '1000:1000', '-w', '/tmp', '--hostname', 'box', '--read-only', '--tmpfs', '/scratch', '--init', '--cap-drop', 'ALL', '-e', 'X=1',
    IMAGE, 'sh', '-c', 'id -u; id -g; pwd; hostname; echo $X; touch /rootfile 2>/dev/null && echo writable || echo ro; touch /scratch/f && echo tmpfs-ok; cat /proc/1/cmdline | tr "\\0" " "; echo; grep CapEff /proc/self/status',
  ]);
  assert.equal(r.code, 0, show(r));
  const lines = r.stdout.split('\n');
  assert.deepEqual(lines.slice(0, 7), ['1000', '1000', '/tmp', 'box', '1', 'ro', 'tmpfs-ok']);
  assert.match(lines[7]!, /^\/sbin\/docker-init (-- )?sh -c /, 'pid 1 is the init');
  assert.match(lines[8]!, /^CapEff:\s+0+$/);
});

test('exec options: -u, -w, -e, -d; docker wait on an exited container; cp into a stopped one', { skip }, async () => {
  await ok(['run', '-d', '--name', 'opts', IMAGE, 'sleep', '600']);
  const ex = await ok(['exec', '-u', 'nobody', '-w', '/etc', '-e', 'Y=2', 'opts', 'sh', '-c', 'id -un; pwd; echo $Y']);
  assert.equal(ex, 'nobody\n/etc\n2\n');
  await ok(['exec', '-d', 'opts', 'sh', '-c', 'sleep 0.2; touch /tmp/detached']);
  await waitFor('the detached exec', async () => ((await d.docker(['exec', 'opts', 'test', '-e', '/tmp/detached'])).code === 0 ? true : undefined));
  const missing = await d.docker(['exec', 'opts', '/no/such/binary']);
  assert.equal(missing.code, 126, `dockerd reports a failed exec start as 126: ${show(missing)}`);
  assert.match(missing.stdout + missing.stderr, /\/no\/such\/binary/);
  assert.deepEqual(existsSync(join(d.runRoot, 'exec')) ? readdirSync(join(d.runRoot, 'exec')) : [], [], 'the failed exec left no run dir');
  await ok(['kill', 'opts']);
  assert.equal((await ok(['wait', 'opts'])).trim(), '137', 'wait on an exited container answers at once');
  const src = join(d.work, 'into-stopped.txt');
  execFileSync('sh', ['-c', `echo stopped-copy > ${src}`]);
  await ok(['cp', src, 'opts:/tmp/in.txt']);
  await ok(['start', 'opts']);
  assert.equal(await ok(['exec', 'opts', 'cat', '/tmp/in.txt']), 'stopped-copy\n');
  await ok(['rm', '-f', 'opts']);
});

test('log rotation: --log-opt max-size/max-file keep the newest lines and the file count', { skip }, async () => {
  await ok(['run', '--name', 'rot', '--log-opt', 'max-size=2k', '--log-opt', 'max-file=2', IMAGE, 'sh', '-c', 'i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line-$i; done']);
  const logs = (await ok(['logs', 'rot'])).trim().split('\n');
  assert.equal(logs.at(-1), 'line-300');
  assert.ok(logs.length < 300, `older lines were rotated away (${logs.length} kept)`);
  const n = Number(logs[0]!.slice(5));
  assert.deepEqual(logs, Array.from({ length: 300 - n + 1 }, (_, i) => `line-${n + i}`), 'the kept lines are contiguous');
  const id = await inspect('{{.Id}}', 'rot');
  const dir = join(d.root, 'containers', id);
  assert.ok(existsSync(join(dir, `${id}-json.log`)) && existsSync(join(dir, `${id}-json.log.1`)));
  assert.ok(!existsSync(join(dir, `${id}-json.log.2`)), 'max-file=2 keeps two files');
  const bad = await d.docker(['run', '--rm', '--log-opt', 'max-size=lots', IMAGE, 'true']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /max-size|lots/);
  await ok(['rm', 'rot']);
});
