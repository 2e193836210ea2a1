// berth-monitor and berth-init driven directly (root). Stand-in helpers play berth-exec:
// `sh -c '... & exit 0'` leaves a background process that becomes the monitor's container.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { connectMonitor, consoleSocketPath, monitorArgv, readExit, readMonitorInfo, type ExitInfo, type MonitorConnection } from '../src/engine/monitor.js';
import { createContainer, deleteContainer, discoverCgroupHost, RuntimeContext, startContainer } from '../src/runtime/index.js';
import { isBerthError } from '../src/errors.js';
import { describeLeaks, findLeaks, reapLeaks } from './helpers/leaks.js';
import { NATIVE_BUILD } from './helpers/runtime.js';
import { makeBundle, type Bundle } from './helpers/bundle.js';

const MONITOR = join(NATIVE_BUILD, 'berth-monitor');
const INIT = join(NATIVE_BUILD, 'berth-init');
const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync(MONITOR) || !existsSync(INIT) ? 'native/build/berth-monitor or berth-init is not built (make -C native)' : false;

const base = mkdtempSync(join(tmpdir(), 'berth-monitor-test-'));
let seq = 0;
const started: number[] = [];

function newDir(): string {
  const d = join(base, `c${seq++}`);
  spawnSync('mkdir', ['-p', d]);
  return d;
}

interface Spawned {
  child: ChildProcess;
  /** M1's exit code. */
  code: Promise<number | null>;
  /** What the helper wrote on fd 3 (the stand-in for launch()'s channel), until EOF. */
  fd3: Promise<string>;
  stderr: Promise<string>;
}

function collect(stream: Readable | null): Promise<string> {
  return new Promise((resolve) => {
    if (!stream) return resolve('');
    let text = '';
    stream.on('data', (c: Buffer) => (text += c.toString()));
    stream.on('error', () => resolve(text));
    stream.on('close', () => resolve(text));
  });
}

/** Spawns M1 as launch() does: its own stdio, a pipe on fd 3 and another inherited fd 4. */
function spawnMonitor(options: string[], helper: string[]): Spawned {
  const child = spawn(MONITOR, [...options, '--', ...helper], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
  const code = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { child, code, fd3: collect(child.stdio[3] as Readable), stderr: collect(child.stderr) };
}

async function until<T>(what: string, fn: () => T | undefined | false, ms = 15_000): Promise<T> {
  for (let i = 0; i * 20 < ms; i++) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Waits for exit.json and for the monitor to be gone. */
async function finished(dir: string): Promise<ExitInfo> {
  const info = readMonitorInfo(dir);
  const exit = await until('exit.json', () => readExit(dir));
  if (info) await until('the monitor to exit', () => !alive(info.monitorPid));
  return exit;
}

function logRecords(path: string): { log: string; stream: string; time: string }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { log: string; stream: string; time: string });
}

function rss(pid: number): string {
  try {
    return /VmRSS:\s+(.*)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

async function attach(dir: string, want: { stdout?: boolean; stderr?: boolean; stdin?: boolean }) {
  const conn: MonitorConnection = await connectMonitor(dir, want);
  const out: { stream: number; text: string }[] = [];
  conn.on('data', (stream, data) => out.push({ stream, text: data.toString() }));
  const text = (stream: number) =>
    out
      .filter((o) => o.stream === stream)
      .map((o) => o.text)
      .join('');
  return { conn, out, text };
}

/** fds >= 5 of this process without O_CLOEXEC: every child gets them, whatever the monitor does. */
function inheritedFromAbove(): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => fd >= 5)
    .filter((fd) => {
      try {
        const flags = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
        return flags !== undefined && (parseInt(flags, 8) & 0o2000000) === 0;
      } catch {
        return false;
      }
    })
    .sort((x, y) => x - y);
}

after(() => rmSync(base, { recursive: true, force: true }));

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

describe('berth-monitor', { skip, concurrency: false }, () => {
  after(() => {
    for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
    const leaks = findLeaks({ paths: [base], ids: [], roots: [] });
    reapLeaks(leaks);
    assert.equal(describeLeaks(leaks), '', 'nothing may outlive the tests');
  });

  test('stand-in container: exit code, log streams, attach with stdin, fds', async () => {
    const dir = newDir();
    const log = join(dir, 'c-json.log');
    // The container waits for a line on stdin, so the client is attached before any output.
    const s = spawnMonitor(['--dir', dir, '--log', log, '--stdin'], [
      '/bin/sh',
      '-c',
      'exec 5<&0; echo "helper fds: $(ls /proc/$$/fd | tr "\\n" " ")" >&3; sh -c \'read l; echo "got $l"; echo err >&2; exit 7\' 3>&- 4>&- <&5 5<&- & exit 0',
    ]);
    assert.equal(await s.code, 0, await s.stderr);
    const info = readMonitorInfo(dir);
    assert.ok(info, 'monitor.json is written before M1 exits');
    started.push(info.monitorPid, info.containerPid);
    // The helper got the spawner's fds 3 and 4; nobody else keeps fd 3 open (EOF seen).
    const helperFds = /helper fds: (.*)/.exec(await s.fd3)?.[1]?.trim().split(' ') ?? [];
    for (const fd of ['0', '1', '2', '3', '4']) assert.ok(helperFds.includes(fd), `helper fds ${helperFds.join(' ')}`);
    assert.equal(statSync(join(dir, 'attach.sock')).mode & 0o777, 0o600);

    // The container holds its stdio and what this test process inherited without O_CLOEXEC
    // (from whoever started it): nothing of the monitor's own leaks into it.
    assert.deepEqual(
      readdirSync(`/proc/${info.containerPid}/fd`).map(Number).sort((x, y) => x - y),
      [0, 1, 2, ...inheritedFromAbove()],
    );
    const fdTargets = ['0', '1', '2'].map((f) => readlinkSync(`/proc/${info.containerPid}/fd/${f}`));
    assert.match(fdTargets[0]!, /^pipe:/);
    assert.match(fdTargets[1]!, /^pipe:/);
    assert.match(fdTargets[2]!, /^pipe:/);
    // M2 is no child of ours (M1 is gone) and it lives in a session of its own.
    const stat = readFileSync(`/proc/${info.monitorPid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    assert.notEqual(Number(stat[1]), process.pid);
    assert.equal(Number(stat[3]), info.monitorPid, 'setsid');
    process.stderr.write(`# berth-monitor VmRSS: ${rss(info.monitorPid)}\n`);

    const a = await attach(dir, { stdout: true, stderr: true, stdin: true });
    const watcher = await connectMonitor(dir, {});
    a.conn.write(Buffer.from('hello\n'));
    const exit = await a.conn.exited;
    assert.ok(exit);
    assert.equal(exit.exitCode, 7);
    assert.equal(exit.signal, null);
    assert.equal(exit.oomKilled, false);
    assert.match(exit.startedAt, TIME);
    assert.match(exit.finishedAt, TIME);
    assert.deepEqual(await watcher.exited, exit);
    assert.equal(a.text(1), 'got hello\n');
    assert.equal(a.text(2), 'err\n');

    assert.deepEqual(await finished(dir), exit);
    const recs = logRecords(log);
    assert.deepEqual(
      recs.map((r) => [r.stream, r.log]).sort(),
      [
        ['stderr', 'err\n'],
        ['stdout', 'got hello\n'],
      ],
    );
    for (const r of recs) assert.match(r.time, TIME);
    assert.equal(existsSync(join(dir, 'attach.sock')), false, 'the socket is removed at exit');
    await assert.rejects(connectMonitor(dir, {}), (e) => isBerthError(e, 'Unavailable'));
  });

  test('stdin: STDIN_CLOSE ends the container’s stdin only with --stdin-once', async () => {
    const cat = ['/bin/sh', '-c', 'exec 5<&0; cat <&5 5<&- & exit 0'];
    const once = newDir();
    const s1 = spawnMonitor(['--dir', once, '--no-log', '--stdin', '--stdin-once'], cat);
    assert.equal(await s1.code, 0);
    started.push(readMonitorInfo(once)!.monitorPid);
    const a = await attach(once, { stdout: true, stdin: true });
    a.conn.write(Buffer.from('abc'));
    a.conn.closeStdin();
    const exit = await a.conn.exited;
    assert.equal(exit?.exitCode, 0);
    assert.equal(a.text(1), 'abc');

    const many = newDir();
    const s2 = spawnMonitor(['--dir', many, '--no-log', '--stdin'], cat);
    assert.equal(await s2.code, 0);
    const info = readMonitorInfo(many)!;
    started.push(info.monitorPid, info.containerPid);
    const first = await attach(many, { stdout: true, stdin: true });
    first.conn.write(Buffer.from('one\n'));
    first.conn.closeStdin();
    await until('the echo', () => first.text(1) === 'one\n');
    first.conn.close();
    const second = await attach(many, { stdout: true, stdin: true });
    second.conn.write(Buffer.from('two\n'));
    await until('the second echo', () => second.text(1) === 'two\n');
    assert.ok(alive(info.containerPid), 'stdin stays open for the next client');
    process.kill(info.containerPid, 'SIGTERM');
    assert.equal((await second.conn.exited)?.exitCode, 143);
    await finished(many);
  });

  test('signals: exit by signal, and the monitor ignores TERM/HUP/INT', async () => {
    const dir = newDir();
    const s = spawnMonitor(['--dir', dir, '--no-log'], ['/bin/sh', '-c', 'sleep 60 & exit 0']);
    assert.equal(await s.code, 0);
    const info = readMonitorInfo(dir)!;
    started.push(info.monitorPid, info.containerPid);
    for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.kill(info.monitorPid, sig);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(alive(info.monitorPid), 'the monitor survives TERM, HUP and INT');
    assert.equal(readExit(dir), undefined);
    process.kill(info.containerPid, 'SIGKILL');
    const exit = await finished(dir);
    assert.equal(exit.exitCode, 137);
    assert.equal(exit.signal, 9);
  });

  test('a client connecting after the exit still gets EXIT at once; late ones get exit.json', async () => {
    const dir = newDir();
    // --wait-attach keeps output and exit until the first client, as berthd needs for exec.
    const s = spawnMonitor(['--dir', dir, '--no-log', '--wait-attach', '10000'], ['/bin/sh', '-c', 'sh -c "echo early; exit 3" & exit 0']);
    assert.equal(await s.code, 0);
    const info = readMonitorInfo(dir)!;
    started.push(info.monitorPid);
    await until('the container to end', () => !alive(info.containerPid));
    const a = await attach(dir, { stdout: true });
    const exit = await a.conn.exited;
    assert.equal(exit?.exitCode, 3);
    assert.equal(a.text(1), 'early\n', 'output made before anyone attached is held for the first client');
    assert.deepEqual(await finished(dir), exit);
  });

  test('json-file details: partial records at 16 KiB, escapes, invalid UTF-8, tty-less streams', async () => {
    const dir = newDir();
    const log = join(dir, 'c.log');
    const script = join(dir, 'out.sh');
    writeFileSync(
      script,
      [
        'head -c 40000 /dev/zero | tr "\\0" a; echo',
        "printf 'tab\\there \"q\" back\\\\slash \\001 \\r\\n'",
        "printf '\\377bad \\303\\251 ok\\n'",
        "printf 'no newline at the end' >&2",
      ].join('\n'),
    );
    const s = spawnMonitor(['--dir', dir, '--log', log], ['/bin/sh', '-c', `sh ${script} & exit 0`]);
    assert.equal(await s.code, 0);
    started.push(readMonitorInfo(dir)!.monitorPid);
    await finished(dir);
    const recs = logRecords(log);
    const out = recs.filter((r) => r.stream === 'stdout').map((r) => r.log);
    assert.deepEqual(
      out.slice(0, 3).map((l) => l.length),
      [16384, 16384, 40000 - 2 * 16384 + 1],
    );
    assert.ok(out[2]!.endsWith('a\n') && !out[0]!.endsWith('\n'));
    assert.equal(out[3], 'tab\there "q" back\\slash \u0001 \r\n');
    assert.equal(out[4], '\ufffdbad é ok\n');
    assert.deepEqual(
      recs.filter((r) => r.stream === 'stderr').map((r) => r.log),
      ['no newline at the end'],
    );
  });

  test('rotation keeps max-file files of at most max-size bytes', async () => {
    const dir = newDir();
    const log = join(dir, 'r.log');
    const s = spawnMonitor(['--dir', dir, '--log', log, '--log-max-size', '2000', '--log-max-files', '3'], [
      '/bin/sh',
      '-c',
      'sh -c \'i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done\' & exit 0',
    ]);
    assert.equal(await s.code, 0);
    started.push(readMonitorInfo(dir)!.monitorPid);
    await finished(dir);
    const files = readdirSync(dir).filter((f) => f.startsWith('r.log')).sort();
    assert.deepEqual(files, ['r.log', 'r.log.1', 'r.log.2']);
    for (const f of files) assert.ok(statSync(join(dir, f)).size <= 2000, `${f} exceeds max-size`);
    const lines = [...logRecords(`${log}.2`), ...logRecords(`${log}.1`), ...logRecords(log)].map((r) => r.log);
    assert.equal(lines.at(-1), 'line-299\n');
    // Contiguous: rotation drops whole old files, never records in between.
    const first = Number(/line-(\d+)/.exec(lines[0]!)![1]);
    assert.deepEqual(
      lines,
      Array.from({ length: 300 - first }, (_, i) => `line-${first + i}\n`),
    );
  });

  test('a client that does not read is dropped; the container and the log go on', async () => {
    const dir = newDir();
    const log = join(dir, 'big.log');
    const s = spawnMonitor(['--dir', dir, '--log', log, '--log-max-size', '0', '--stdin'], [
      '/bin/sh',
      '-c',
      'exec 5<&0; sh -c \'read go; i=0; while [ $i -lt 8000 ]; do echo "$i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done\' <&5 5<&- & exit 0',
    ]);
    assert.equal(await s.code, 0);
    started.push(readMonitorInfo(dir)!.monitorPid);
    const slow = await connectMonitor(dir, { stdout: true });
    // Never read: the kernel buffers fill, then the monitor's 1 MiB cap.
    const socket = (slow as unknown as { socket: { pause(): void; resume(): void } }).socket;
    socket.pause();
    const kick = await connectMonitor(dir, { stdin: true });
    kick.write(Buffer.from('go\n'));
    const exit = await finished(dir);
    assert.equal(exit.exitCode, 0);
    socket.resume();
    assert.equal(await slow.exited, undefined, 'the slow client was dropped without EXIT');
    kick.close();
    slow.close();
    assert.equal(logRecords(log).length, 8000);
  });

  test('tty: the pty master comes over console.sock; output, stdin and resize go through it', async (t) => {
    const py = spawnSync('python3', ['-c', 'import socket; socket.send_fds'], { stdio: 'ignore' });
    if (py.status !== 0) return t.skip('python3 with socket.send_fds is needed for the stand-in');
    const dir = newDir();
    const log = join(dir, 't.log');
    // Stand-in for berth-exec's OP_CONSOLE: a pty, the master sent to console.sock, the slave as stdio.
    const helper = join(dir, 'helper.py');
    writeFileSync(
      helper,
      `import os, socket, sys
master, slave = os.openpty()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(${JSON.stringify(join(dir, 'console.sock'))})
socket.send_fds(s, [b'/dev/pts/x'], [master])
s.close(); os.close(master)
if os.fork() == 0:
    os.setsid()
    import fcntl, termios
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2): os.dup2(slave, fd)
    os.close(slave)
    os.execv('/bin/sh', ['sh', '-c', 'echo tty-ready; read l; echo "got $l"; stty size'])
sys.exit(0)
`,
    );
    const s = spawnMonitor(['--dir', dir, '--log', log, '--tty', '--stdin'], ['python3', helper]);
    assert.equal(await s.code, 0, await s.stderr);
    const info = readMonitorInfo(dir)!;
    started.push(info.monitorPid, info.containerPid);
    const a = await attach(dir, { stdout: true, stderr: true, stdin: true });
    a.conn.resize(33, 77);
    a.conn.write(Buffer.from('hi\n'));
    const exit = await a.conn.exited;
    assert.equal(exit?.exitCode, 0);
    assert.equal(a.text(2), '', 'a tty has one stream');
    assert.match(a.text(1), /got hi\r\n33 77\r\n/);
    await finished(dir);
    const recs = logRecords(log);
    assert.ok(recs.every((r) => r.stream === 'stdout'));
    assert.ok(recs.some((r) => r.log === 'tty-ready\r\n'));
    assert.equal(existsSync(join(dir, 'console.sock')), false);
  });

  test('helper failures: its exit code, 127 when missing, 125 for bad options; nothing left', async () => {
    const dir = newDir();
    const failing = spawnMonitor(['--dir', dir, '--log', join(dir, 'l')], ['/bin/sh', '-c', 'exit 3']);
    assert.equal(await failing.code, 3);
    assert.equal(readExit(dir), undefined);
    assert.equal(readMonitorInfo(dir), undefined);
    await until('the socket to go', () => !existsSync(join(dir, 'attach.sock')));

    const missing = spawnMonitor(['--dir', dir, '--no-log'], ['/nonexistent/helper']);
    assert.equal(await missing.code, 127);
    assert.match(await missing.stderr, /exec \/nonexistent\/helper/);

    for (const bad of [['--dir', dir, '--no-log', '--bogus'], ['--dir', dir, '--no-log', '--log-max-files', '0'], ['--no-log'], ['--dir', dir, '--log', 'relative.log']]) {
      const r = spawnSync(MONITOR, [...bad, '--', '/bin/true'], { encoding: 'utf8' });
      assert.equal(r.status, 125, bad.join(' '));
      assert.match(r.stderr, /berth-monitor: /);
    }
    const noDir = spawnSync(MONITOR, ['--dir', join(dir, 'missing'), '--no-log', '--', '/bin/true'], { encoding: 'utf8' });
    assert.equal(noDir.status, 125);
    assert.match(noDir.stderr, /missing/);
  });
});

describe('berth-init', { skip, concurrency: false }, () => {
  test('exits with the command’s code, 128+signal when it is killed, 127 when it is missing', () => {
    assert.equal(spawnSync(INIT, ['sh', '-c', 'exit 3']).status, 3);
    assert.equal(spawnSync(INIT, ['--', 'sh', '-c', 'kill -9 $$']).status, 137);
    const r = spawnSync(INIT, ['/nonexistent'], { encoding: 'utf8' });
    assert.equal(r.status, 127);
    assert.match(r.stderr, /nonexistent/);
    assert.equal(spawnSync(INIT, []).status, 2);
  });

  test('forwards signals to the command', async () => {
    const child = spawn(INIT, ['sh', '-c', 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const code = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    child.kill('SIGTERM');
    assert.equal(await code, 42);
  });

  test('as pid 1 of a pid namespace it reaps orphans', (t) => {
    const probe = spawnSync('unshare', ['-pf', '--mount-proc', 'true']);
    if (probe.status !== 0) return t.skip('unshare -pf --mount-proc is not available');
    // Orphans are made, exit, and must not stay zombies under pid 1.
    const r = spawnSync(
      'unshare',
      ['-pf', '--mount-proc', INIT, 'sh', '-c', 'for i in 1 2 3; do (sleep 0.05 &); done; sleep 0.5; cat /proc/[0-9]*/stat | grep -c " Z " || true; echo pid1=$(cat /proc/1/comm)'],
      { encoding: 'utf8', timeout: 20_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^0\npid1=berth-init\n$/);
  });
});

describe('berth-monitor in front of berth-exec (the runtime library with launch({ wrapper }))', { skip, concurrency: false }, () => {
  const ociRoot = join(base, 'oci');
  const ctx = new RuntimeContext({ root: ociRoot, warn: () => undefined });
  const bundles: Bundle[] = [];
  const ids: string[] = [];
  const dirs: string[] = [];

  after(async () => {
    for (const id of ids) await deleteContainer(ctx, id, true).catch(() => undefined);
    const leaks = findLeaks({ paths: [...bundles.map((b) => b.dir), ...dirs], ids, roots: [ociRoot] });
    reapLeaks(leaks);
    for (const b of bundles) await b.cleanup();
    assert.equal(describeLeaks(leaks), '', 'nothing may outlive the containers');
  });

  async function run(o: { args: string[]; tty?: boolean; memory?: number }) {
    const id = `mon-${process.pid}-${seq}`;
    const bundle = makeBundle({
      args: o.args,
      edit: (sp) => {
        sp.process!.terminal = Boolean(o.tty);
        sp.linux!.cgroupsPath = `/berth-monitor-test/${id}`;
        if (o.memory) sp.linux!.resources = { ...sp.linux!.resources, memory: { limit: o.memory, swap: o.memory } };
      },
    });
    bundles.push(bundle);
    ids.push(id);
    const runDir = newDir();
    dirs.push(runDir);
    const log = join(runDir, 'c-json.log');
    const host = await discoverCgroupHost();
    const memory = host.v1.find((m) => m.controllers.includes('memory'));
    const oomFiles = memory
      ? [join(memory.mountPoint, `/berth-monitor-test/${id}`, 'memory.oom_control')]
      : host.v2
        ? [join(host.v2.mountPoint, `/berth-monitor-test/${id}`, 'memory.events')]
        : [];
    const created = await createContainer(ctx, {
      id,
      bundle: bundle.dir,
      stdio: ['ignore', 'ignore', 'ignore'],
      consoleSocket: o.tty ? consoleSocketPath(runDir) : undefined,
      // The client attaches before the start: the monitor must hold output until its HELLO
      // (under load the container's first write can beat the monitor's accept, as berthd knows).
      wrapper: monitorArgv({ runDir, logPath: log, tty: o.tty, stdin: true, oomFiles, waitAttachMs: 5_000 }),
    });
    const info = readMonitorInfo(runDir);
    assert.ok(info);
    started.push(info.monitorPid);
    assert.equal(info.containerPid, created.launched.pid, 'the monitor found the container berth-exec made');
    return { id, runDir, log, info };
  }

  test('a real container: stdio, attach, log and exit code', async () => {
    const c = await run({ args: ['sh', '-c', 'echo hello; echo oops >&2; read x; echo "in $x"; exit 5'] });
    const a = await attach(c.runDir, { stdout: true, stderr: true, stdin: true });
    await startContainer(ctx, c.id);
    await until('the first output', () => a.text(1).includes('hello'));
    // Started (the init has exec'd): only the stdio pipes from the monitor are left.
    assert.deepEqual(readdirSync(`/proc/${c.info.containerPid}/fd`).sort(), ['0', '1', '2']);
    for (const fd of ['0', '1', '2']) assert.match(readlinkSync(`/proc/${c.info.containerPid}/fd/${fd}`), /^pipe:/);
    a.conn.write(Buffer.from('put\n'));
    const exit = await a.conn.exited;
    assert.equal(exit?.exitCode, 5);
    assert.equal(a.text(1), 'hello\nin put\n');
    assert.equal(a.text(2), 'oops\n');
    await finished(c.runDir);
    assert.deepEqual(
      logRecords(c.log).map((r) => `${r.stream}:${r.log}`),
      ['stdout:hello\n', 'stderr:oops\n', 'stdout:in put\n'],
    );
    await deleteContainer(ctx, c.id, true);
  });

  test('a real container with a terminal: console socket, resize, stdin', async () => {
    const c = await run({ tty: true, args: ['sh', '-c', 'echo ready; read x; echo "got $x"; stty size'] });
    const a = await attach(c.runDir, { stdout: true, stdin: true });
    await startContainer(ctx, c.id);
    await until('ready', () => a.text(1).includes('ready'));
    a.conn.resize(33, 77);
    a.conn.write(Buffer.from('typed\n'));
    const exit = await a.conn.exited;
    assert.equal(exit?.exitCode, 0);
    assert.match(a.text(1), /got typed\r\n33 77\r\n/);
    await finished(c.runDir);
    assert.ok(logRecords(c.log).every((r) => r.stream === 'stdout'));
    await deleteContainer(ctx, c.id, true);
  });

  test('the OOM killer is reported', async (t) => {
    const c = await run({ memory: 16 << 20, args: ['sh', '-c', 'read x; dd if=/dev/zero of=/dev/null bs=64M count=1'] });
    const a = await attach(c.runDir, { stdin: true });
    await startContainer(ctx, c.id);
    a.conn.write(Buffer.from('go\n'));
    const exit = await a.conn.exited;
    assert.ok(exit);
    if (exit.exitCode !== 137) return t.skip(`dd was not OOM-killed here (exit ${exit.exitCode}); the memory limit did not bite`);
    assert.equal(exit.signal, 9);
    assert.equal(exit.oomKilled, true);
    await finished(c.runDir);
    await deleteContainer(ctx, c.id, true);
  });
});
