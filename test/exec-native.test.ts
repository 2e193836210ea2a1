// berth-exec driven directly with hand-written plans (root). The channel protocol is
// spoken here on purpose: this tests the C side of the contract in native/plan.h.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodePlan, frameMessage, MountFlag, Msg, Op, type Plan } from '../src/runtime/plan.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const execBin = path.join(root, 'native/build/berth-exec');

const CLONE_NEWNS = 0x00020000;
const CLONE_NEWUTS = 0x04000000;
const CLONE_NEWIPC = 0x08000000;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWPID = 0x20000000;
const CLONE_NEWNET = 0x40000000;
const MS_RDONLY = 0x1;
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_NOEXEC = 0x8;
const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MS_PRIVATE = 1 << 18;
const MS_SLAVE = 1 << 19;
const S_IFCHR = 0o020000;
const RLIMIT_NOFILE = 7;

const skip = process.getuid?.() !== 0 ? 'needs root' : !fs.existsSync(execBin) ? 'native/build/berth-exec is not built (make -C native)' : false;

interface Message {
  type: number;
  payload: Buffer;
}

interface RunResult {
  code: number | null;
  messages: Message[];
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** Answers MSG_SYNC with this payload of MSG_CONTINUE. */
  state?: string;
  /** Extra fds the executor inherits after the channel (to check they do not leak). */
  extraFds?: number[];
  /** Called on every message as it arrives. */
  onMessage?: (m: Message) => void;
  /** Called with the stdout seen so far. */
  onStdout?: (text: string, child: ChildProcess) => void;
}

function parseMessages(buf: Buffer): Message[] {
  const out: Message[] = [];
  let off = 0;
  while (buf.length - off >= 8) {
    const len = buf.readUInt32LE(off + 4);
    if (buf.length - off < 8 + len) break;
    out.push({ type: buf.readUInt32LE(off), payload: buf.subarray(off + 8, off + 8 + len) });
    off += 8 + len;
  }
  return out;
}

/** Runs a plan; resolves when berth-exec and everything holding its stdio have ended. */
async function runPlan(plan: Plan, opts: RunOptions = {}): Promise<RunResult> {
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', 'pipe', ...(opts.extraFds ?? [])];
  const child = spawn(execBin, [], { stdio, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', _BERTH_CHANNEL_FD: '3' } });
  const channel = child.stdio[3] as Socket;
  let received = Buffer.alloc(0);
  let seen = 0;
  const messages: Message[] = [];
  channel.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    const all = parseMessages(received);
    for (const m of all.slice(seen)) {
      messages.push(m);
      opts.onMessage?.(m);
      if (m.type === Msg.SYNC) channel.write(frameMessage(Msg.CONTINUE, Buffer.from(opts.state ?? '')));
    }
    seen = all.length;
  });
  channel.on('error', () => {});
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    opts.onStdout?.(stdout, child);
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  channel.write(frameMessage(Msg.PLAN, encodePlan(plan)));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, messages, stdout, stderr };
}

function errorOf(r: RunResult): { index: number; errno: number; message: string } | undefined {
  const m = r.messages.find((x) => x.type === Msg.ERROR);
  if (!m) return undefined;
  return { index: m.payload.readInt32LE(0), errno: m.payload.readInt32LE(4), message: m.payload.subarray(8).toString() };
}

function types(r: RunResult): number[] {
  return r.messages.map((m) => m.type);
}

let tmp = '';
let rootfs = '';

/** The ops every container plan here starts with: private mounts, rootfs, /proc, /dev/null. */
function setupOps(): Plan {
  return [
    { op: Op.MOUNT, args: ['', '/', '', MS_SLAVE | MS_REC, '', MountFlag.PROPAGATION] },
    { op: Op.ROOTFS, args: [rootfs] },
    { op: Op.MOUNT, args: [rootfs, rootfs, '', MS_BIND | MS_REC, '', 0] },
    { op: Op.MOUNT, args: [rootfs, rootfs, '', MS_PRIVATE, '', MountFlag.PROPAGATION] },
    { op: Op.MOUNT, args: ['proc', '/proc', 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC, '', MountFlag.IN_ROOT | MountFlag.MKDIR] },
    { op: Op.MOUNT, args: ['tmpfs', '/dev', 'tmpfs', MS_NOSUID, 'mode=755', MountFlag.IN_ROOT | MountFlag.MKDIR] },
    { op: Op.MKNOD, args: ['/dev/null', S_IFCHR | 0o666, 1, 3, 0, 0] },
  ];
}

function execOp(cmd: string, env: string[] = ['PATH=/bin']): Plan[number] {
  return { op: Op.EXEC, args: ['/', 3, 'sh', '-c', cmd, ...env] };
}

const allNs = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;

describe('berth-exec', { skip }, () => {
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-exec-test-'));
    rootfs = path.join(tmp, 'rootfs');
    fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
    fs.mkdirSync(path.join(rootfs, 'tmp'));
    fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
    fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
    for (const name of ['sh', 'echo', 'cat', 'ls', 'id', 'hostname', 'sleep', 'true', 'false', 'readlink']) {
      fs.symlinkSync('busybox', path.join(rootfs, 'bin', name));
    }
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('runs a process as pid 1 in new namespaces after pivot_root, with its hostname', { timeout: 20_000 }, async () => {
    const r = await runPlan([
      { op: Op.CLONE, args: [allNs] },
      { op: Op.CHILD, args: [] },
      { op: Op.SETSID, args: [] },
      ...setupOps(),
      { op: Op.PIVOT_ROOT, args: [rootfs] },
      { op: Op.HOSTNAME, args: ['berth-test'] },
      { op: Op.CLOSE_FDS, args: [3] },
      execOp('hostname; echo $$; ls /'),
    ]);
    assert.equal(errorOf(r), undefined, r.stderr);
    assert.equal(r.code, 0);
    assert.deepEqual(types(r), [Msg.PID, Msg.CHILD_DONE]);
    assert.ok(r.messages[0]!.payload.readInt32LE(0) > 1);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'berth-test');
    assert.equal(lines[1], '1');
    assert.deepEqual(lines.slice(2).filter(Boolean).sort(), ['bin', 'dev', 'proc', 'tmp']);
  });

  test('a failing mount reports MSG_ERROR with the op index and exits non-zero', { timeout: 20_000 }, async () => {
    const plan: Plan = [
      { op: Op.CLONE, args: [CLONE_NEWNS | CLONE_NEWPID] },
      { op: Op.CHILD, args: [] },
      ...setupOps(),
      { op: Op.MOUNT, args: ['/nonexistent/source', '/mnt', '', MS_BIND, '', MountFlag.IN_ROOT | MountFlag.MKDIR] },
      execOp('true'),
    ];
    const r = await runPlan(plan);
    assert.notEqual(r.code, 0);
    const e = errorOf(r);
    assert.ok(e, 'an error was reported');
    assert.equal(e.index, plan.length - 2);
    assert.equal(e.errno, 2);
    assert.match(e.message, /^bind mount \/nonexistent\/source on .*rootfs\/mnt: No such file or directory$/);
    assert.ok(!types(r).includes(Msg.CHILD_DONE));
  });

  test('a plan with a bad argument kind is refused naming the op', { timeout: 10_000 }, async () => {
    const r = await runPlan([
      { op: Op.HOSTNAME, args: [42] },
    ]);
    assert.equal(r.code, 1);
    const e = errorOf(r);
    assert.ok(e);
    assert.equal(e.index, 0);
    assert.match(e.message, /HOSTNAME: argument 0 must be a string/);
  });

  test('a repeat count that would overflow is refused, not a crash', { timeout: 10_000 }, async () => {
    const r = await runPlan([{ op: Op.SECCOMP_RULE, args: ['read', 0x7fff0000, 0, 2n ** 62n, 0, 1, 2, 3] }]);
    assert.equal(r.code, 1, 'an error exit, not a signal');
    assert.match(errorOf(r)?.message ?? '', /SECCOMP_RULE: argument 3 \(count/);
  });

  test('a missing program fails at WAIT_START before MSG_CHILD_DONE', { timeout: 20_000 }, async () => {
    const fifo = path.join(tmp, 'fifo-missing');
    fs.rmSync(fifo, { force: true });
    await mkfifo(fifo);
    const plan: Plan = [
      { op: Op.CLONE, args: [CLONE_NEWNS | CLONE_NEWPID] },
      { op: Op.CHILD, args: [] },
      ...setupOps(),
      { op: Op.FIFO_OPEN, args: [fifo] },
      { op: Op.PIVOT_ROOT, args: [rootfs] },
      { op: Op.WAIT_START, args: [] },
      { op: Op.EXEC, args: ['/', 1, 'nope', 'PATH=/bin:/usr/bin'] },
    ];
    const r = await runPlan(plan);
    assert.notEqual(r.code, 0);
    const e = errorOf(r);
    assert.ok(e);
    assert.equal(e.index, plan.length - 2);
    assert.equal(e.message, 'exec: "nope": executable file not found in $PATH');
    assert.ok(!types(r).includes(Msg.CHILD_DONE));
  });

  test('create/start through the exec fifo; berth-exec runs from a sealed memfd', { timeout: 20_000 }, async () => {
    const fifo = path.join(tmp, 'fifo');
    fs.rmSync(fifo, { force: true });
    await mkfifo(fifo);
    let pid = 0;
    let done!: () => void;
    const childDone = new Promise<void>((resolve) => (done = resolve));
    const run = runPlan(
      [
        { op: Op.CLONE, args: [CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS] },
        { op: Op.CHILD, args: [] },
        ...setupOps(),
        { op: Op.FIFO_OPEN, args: [fifo] },
        { op: Op.PIVOT_ROOT, args: [rootfs] },
        { op: Op.WAIT_START, args: [] },
        { op: Op.CLOSE_FDS, args: [3] },
        execOp('echo started'),
      ],
      {
        onMessage: (m) => {
          if (m.type === Msg.PID) pid = m.payload.readInt32LE(0);
          if (m.type === Msg.CHILD_DONE) done();
        },
      },
    );
    await childDone;
    // The container's first process waits on the fifo, still running berth-exec.
    assert.match(fs.readlinkSync(`/proc/${pid}/exe`), /^\/memfd:berth-exec/);
    assert.throws(() => fs.openSync(`/proc/${pid}/exe`, 'r+'));
    const fh = await fs.promises.open(fifo, 'r');
    const data = await fh.readFile('utf8');
    await fh.close();
    assert.equal(data, '0');
    const r = await run;
    assert.equal(errorOf(r), undefined);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'started\n');
  });

  test('OP_SYNC hands the state to OP_HOOK on stdin; hook failures and timeouts are errors', { timeout: 30_000 }, async () => {
    const out = path.join(tmp, 'hook-out');
    const hook = path.join(tmp, 'hook.sh');
    fs.writeFileSync(hook, '#!/bin/sh\necho "$1 $HOOKVAR" > "$2"\ncat >> "$2"\n', { mode: 0o755 });
    const state = JSON.stringify({ ociVersion: '1.0.2', id: 'x', status: 'creating' });
    const r = await runPlan(
      [
        { op: Op.CLONE, args: [CLONE_NEWNS] },
        { op: Op.CHILD, args: [] },
        { op: Op.SYNC, args: ['createContainer'] },
        { op: Op.HOOK, args: [hook, 5, 3, 'hook.sh', 'arg1', out, 'HOOKVAR=v', 'PATH=/usr/bin:/bin'] },
        { op: Op.EXEC, args: ['/', 1, 'true', 'PATH=/usr/bin:/bin'] },
      ],
      { state },
    );
    assert.equal(errorOf(r), undefined, r.stderr);
    assert.equal(r.code, 0);
    assert.deepEqual(types(r), [Msg.PID, Msg.SYNC, Msg.CHILD_DONE]);
    assert.equal(r.messages[1]!.payload.toString(), 'createContainer');
    assert.equal(fs.readFileSync(out, 'utf8'), `arg1 v\n${state}`);

    const failing = await runPlan([{ op: Op.HOOK, args: ['/bin/sh', 0, 3, 'sh', '-c', 'exit 3'] }]);
    assert.equal(failing.code, 1);
    assert.equal(errorOf(failing)?.message, 'hook /bin/sh exited with status 3');

    const slow = await runPlan([{ op: Op.HOOK, args: ['/bin/sleep', 1, 2, 'sleep', '10'] }]);
    assert.equal(slow.code, 1);
    assert.equal(errorOf(slow)?.message, 'hook /bin/sleep timed out after 1s');
  });

  test('foreground mode reports the wait status with MSG_EXIT', { timeout: 20_000 }, async () => {
    const r = await runPlan([
      { op: Op.CLONE, args: [CLONE_NEWNS | CLONE_NEWPID] },
      { op: Op.FOREGROUND, args: [] },
      { op: Op.CHILD, args: [] },
      ...setupOps(),
      { op: Op.PIVOT_ROOT, args: [rootfs] },
      execOp('echo out; exit 7'),
    ]);
    assert.equal(errorOf(r), undefined, r.stderr);
    assert.equal(r.code, 0);
    assert.deepEqual(types(r), [Msg.PID, Msg.CHILD_DONE, Msg.EXIT]);
    const status = r.messages[2]!.payload.readInt32LE(0);
    assert.equal(status, 7 << 8);
    assert.equal(r.stdout, 'out\n');
  });

  test('no fd but 0, 1, 2 reaches the container process', { timeout: 20_000 }, async () => {
    const extra = fs.openSync(path.join(tmp, 'leak'), 'w');
    try {
      const r = await runPlan(
        [
          { op: Op.CLONE, args: [CLONE_NEWNS | CLONE_NEWPID] },
          { op: Op.CHILD, args: [] },
          ...setupOps(),
          { op: Op.PIVOT_ROOT, args: [rootfs] },
          { op: Op.CLOSE_FDS, args: [3] },
          execOp('ls /proc/$$/fd; true'),
        ],
        { extraFds: [extra] },
      );
      assert.equal(errorOf(r), undefined, r.stderr);
      assert.deepEqual(r.stdout.trim().split(/\s+/).sort(), ['0', '1', '2']);
    } finally {
      fs.closeSync(extra);
    }
  });

  test('user namespace maps, rlimits, capabilities and the user are applied', { timeout: 20_000 }, async () => {
    const r = await runPlan([
      { op: Op.CLONE, args: [CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID] },
      { op: Op.UIDMAP, args: ['0 100000 65536\n'] },
      { op: Op.SETGROUPS_DENY, args: [] },
      { op: Op.GIDMAP, args: ['0 100000 65536\n'] },
      { op: Op.CHILD, args: [] },
      { op: Op.RLIMIT, args: [RLIMIT_NOFILE, 1000, 2000] },
      { op: Op.OOM_SCORE_ADJ, args: [200] },
      { op: Op.USER, args: [1000, 1000, -1] },
      { op: Op.CAPS, args: [0, 0, 0, 0, 0] },
      { op: Op.EXEC, args: ['/', 3, '/bin/sh', '-c', 'id -u; id -g; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; grep -E "^Cap(Eff|Bnd)" /proc/self/status', 'PATH=/usr/bin:/bin'] },
    ]);
    assert.equal(errorOf(r), undefined, r.stderr);
    assert.equal(r.code, 0);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 5), ['1000', '1000', '1000', '2000', '200']);
    assert.deepEqual(lines.slice(5).map((l) => l.replace(/\s+/g, ' ')), ['CapEff: 0000000000000000', 'CapBnd: 0000000000000000']);
  });

  test('a hard rlimit above the host limit is clamped with a warning, as is a refused oom_score_adj', { timeout: 20_000 }, async () => {
    const r = await runPlan([
      { op: Op.CLONE, args: [CLONE_NEWUSER] },
      { op: Op.UIDMAP, args: ['0 100000 65536\n'] },
      { op: Op.GIDMAP, args: ['0 100000 65536\n'] },
      { op: Op.CHILD, args: [] },
      { op: Op.RLIMIT, args: [RLIMIT_NOFILE, 1 << 30, 1 << 30] },
      { op: Op.OOM_SCORE_ADJ, args: [-999] },
      { op: Op.EXEC, args: ['/', 3, '/bin/sh', '-c', 'ulimit -Hn', 'PATH=/usr/bin:/bin'] },
    ]);
    assert.equal(errorOf(r), undefined, r.stderr);
    const w = r.messages.find((m) => m.type === Msg.WARNING);
    assert.ok(w, 'a warning was sent');
    assert.match(w.payload.toString(), /^rlimit RLIMIT_NOFILE: hard limit 1073741824 exceeds the host's \d+, clamped$/);
    assert.notEqual(r.stdout.trim(), String(1 << 30));
    const warnings = r.messages.filter((m) => m.type === Msg.WARNING).map((m) => m.payload.toString());
    // Lowering oom_score_adj needs CAP_SYS_RESOURCE in the host's user namespace.
    assert.match(warnings[1] ?? '', /^oom_score_adj -999: .*; keeping -?\d+$/);
  });

  test('filesystem ops: masks, read-only paths, binds with remount, symlinks, mkdir, sysctl, read-only root', { timeout: 20_000 }, async () => {
    const data = path.join(tmp, 'data');
    fs.mkdirSync(data, { recursive: true });
    fs.writeFileSync(path.join(data, 'f'), 'content\n');
    fs.writeFileSync(path.join(tmp, 'single-file'), 'single\n');
    const r = await runPlan([
      { op: Op.CLONE, args: [allNs] },
      { op: Op.CHILD, args: [] },
      ...setupOps(),
      { op: Op.MOUNT, args: [data, '/data', '', MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID, '', MountFlag.IN_ROOT | MountFlag.MKDIR | MountFlag.BIND_REMOUNT] },
      { op: Op.MOUNT, args: [path.join(tmp, 'single-file'), '/etc/single', '', MS_BIND, '', MountFlag.IN_ROOT | MountFlag.MKDIR] },
      { op: Op.MOUNT, args: ['tmpfs', '/absent', 'tmpfs', 0, '', MountFlag.IN_ROOT | MountFlag.ENOENT_OK] },
      { op: Op.MOUNT, args: ['devpts', '/dev/pts', 'devpts', MS_NOSUID | MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620', MountFlag.IN_ROOT | MountFlag.MKDIR] },
      { op: Op.SYMLINK, args: ['/proc/self/fd', '/dev/fd'] },
      { op: Op.SYMLINK, args: ['/proc/self/fd', '/dev/fd'] },
      { op: Op.MKDIR, args: ['/a/b/c', 0o711] },
      { op: Op.PIVOT_ROOT, args: [rootfs] },
      { op: Op.MASK_PATH, args: ['/proc/timer_list'] },
      { op: Op.MASK_PATH, args: ['/proc/acpi'] },
      { op: Op.MASK_PATH, args: ['/proc/does-not-exist'] },
      { op: Op.SYSCTL, args: ['net.ipv4.ip_forward', '1'] },
      { op: Op.READONLY_PATH, args: ['/proc/sys'] },
      { op: Op.REMOUNT_RO, args: ['/'] },
      { op: Op.CLOSE_FDS, args: [3] },
      execOp(
        [
          'cat /data/f /etc/single',
          'echo x > /data/f 2>/dev/null && echo data-writable',
          'readlink /dev/fd',
          'ls -d /a/b/c',
          'test -e /absent || echo no-absent',
          'busybox wc -c < /proc/timer_list',
          'touch /proc/acpi/x 2>/dev/null && echo acpi-writable',
          'mount | grep -c "/proc/acpi type tmpfs (ro"',
          'cat /proc/sys/net/ipv4/ip_forward',
          'echo 0 > /proc/sys/net/ipv4/ip_forward 2>/dev/null && echo sys-writable',
          'touch /x 2>/dev/null && echo root-writable',
          'echo /dev/pts/*',
          'true',
        ].join('; '),
      ),
    ]);
    assert.equal(errorOf(r), undefined, r.stderr);
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => l.trim()), [
      'content',
      'single',
      '/proc/self/fd',
      '/a/b/c',
      'no-absent',
      '0',
      '1',
      '1',
      '/dev/pts/ptmx',
    ], r.stderr);
  });

  test('a pty goes to the console socket (berth-recvtty) and becomes the controlling terminal', { timeout: 20_000 }, async () => {
    const sock = path.join(tmp, 'console.sock');
    const recv = spawn(path.join(root, 'native/build/berth-recvtty'), ['--once', '--no-stdin', sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    recv.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 200 && !fs.existsSync(sock); i++) await new Promise((res) => setTimeout(res, 10));
    const r = await runPlan([
      { op: Op.CONSOLE_SOCKET, args: [sock] },
      { op: Op.CLONE, args: [CLONE_NEWNS | CLONE_NEWPID] },
      { op: Op.CHILD, args: [] },
      { op: Op.SETSID, args: [] },
      ...setupOps(),
      { op: Op.MOUNT, args: ['devpts', '/dev/pts', 'devpts', MS_NOSUID | MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620', MountFlag.IN_ROOT | MountFlag.MKDIR] },
      { op: Op.SYMLINK, args: ['pts/ptmx', '/dev/ptmx'] },
      { op: Op.PIVOT_ROOT, args: [rootfs] },
      { op: Op.CONSOLE, args: [33, 99] },
      { op: Op.CLOSE_FDS, args: [3] },
      execOp('tty; stty size; echo hi'),
    ]);
    assert.equal(errorOf(r), undefined, r.stderr);
    await once(recv, 'close');
    assert.equal(out, '/dev/pts/0\r\n33 99\r\nhi\r\n');
    assert.equal(r.stdout, '');
  });

  test('foreground mode proxies the pty when there is no console socket', { timeout: 20_000 }, async () => {
    const r = await runPlan([
      { op: Op.CLONE, args: [CLONE_NEWNS | CLONE_NEWPID] },
      { op: Op.FOREGROUND, args: [] },
      { op: Op.CHILD, args: [] },
      { op: Op.SETSID, args: [] },
      ...setupOps(),
      { op: Op.MOUNT, args: ['devpts', '/dev/pts', 'devpts', MS_NOSUID | MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620', MountFlag.IN_ROOT | MountFlag.MKDIR] },
      { op: Op.SYMLINK, args: ['pts/ptmx', '/dev/ptmx'] },
      { op: Op.PIVOT_ROOT, args: [rootfs] },
      { op: Op.CONSOLE, args: [0, 0] },
      { op: Op.CLOSE_FDS, args: [3] },
      execOp('tty; exit 3'),
    ]);
    assert.equal(errorOf(r), undefined, r.stderr);
    assert.deepEqual(types(r), [Msg.PID, Msg.CHILD_DONE, Msg.EXIT]);
    assert.equal(r.messages[2]!.payload.readInt32LE(0), 3 << 8);
    assert.equal(r.stdout, '/dev/pts/0\r\n');
  });

  test('seccomp ops reach the filter', { timeout: 20_000 }, async () => {
    const SCMP_ACT_ALLOW = 0x7fff0000;
    const SCMP_ACT_ERRNO = (n: number) => 0x00050000 | n;
    const r = await runPlan([
      { op: Op.CLONE, args: [CLONE_NEWNS] },
      { op: Op.CHILD, args: [] },
      { op: Op.NO_NEW_PRIVS, args: [] },
      { op: Op.SECCOMP_INIT, args: [SCMP_ACT_ALLOW, 0] },
      { op: Op.SECCOMP_RULE, args: ['mkdir', SCMP_ACT_ERRNO(1), 1, 0] },
      { op: Op.SECCOMP_RULE, args: ['mkdirat', SCMP_ACT_ERRNO(1), 1, 0] },
      { op: Op.SECCOMP_LOAD, args: [0] },
      { op: Op.EXEC, args: ['/', 3, '/bin/sh', '-c', `mkdir ${tmp}/blocked 2>&1; grep Seccomp: /proc/self/status`, 'PATH=/usr/bin:/bin'] },
    ]);
    assert.equal(errorOf(r), undefined, r.stderr);
    assert.match(r.stdout, /Operation not permitted/);
    assert.match(r.stdout, /Seccomp:\s+2/);
    assert.ok(!fs.existsSync(path.join(tmp, 'blocked')));
  });

  for (const sig of ['SIGTERM', 'SIGALRM', 'SIGXCPU', 'SIGPWR'] as const) {
  test(`foreground mode forwards ${sig} to the container process`, { timeout: 20_000 }, async () => {
    let sent = false;
    const r = await runPlan(
      [
        { op: Op.CLONE, args: [CLONE_NEWNS | CLONE_NEWPID] },
        { op: Op.FOREGROUND, args: [] },
        { op: Op.CHILD, args: [] },
        ...setupOps(),
        { op: Op.PIVOT_ROOT, args: [rootfs] },
        execOp(`trap "echo got-${sig}; exit 5" ${sig.slice(3)}; echo ready; while true; do sleep 0.05; done`),
      ],
      {
        onStdout: (text, child) => {
          if (!sent && text.includes('ready')) {
            sent = true;
            child.kill(sig);
          }
        },
      },
    );
    assert.equal(errorOf(r), undefined, r.stderr);
    assert.deepEqual(types(r), [Msg.PID, Msg.CHILD_DONE, Msg.EXIT]);
    assert.equal(r.messages[2]!.payload.readInt32LE(0), 5 << 8);
    assert.equal(r.stdout, `ready\ngot-${sig}\n`);
  });
  }

  test('a plain fork after SETNS joins a waiting container (the exec path)', { timeout: 20_000 }, async () => {
    const fifo = path.join(tmp, 'fifo-exec');
    fs.rmSync(fifo, { force: true });
    await mkfifo(fifo);
    let pid = 0;
    let done!: () => void;
    const childDone = new Promise<void>((resolve) => (done = resolve));
    const init = runPlan(
      [
        { op: Op.CLONE, args: [allNs] },
        { op: Op.CHILD, args: [] },
        ...setupOps(),
        { op: Op.FIFO_OPEN, args: [fifo] },
        { op: Op.PIVOT_ROOT, args: [rootfs] },
        { op: Op.HOSTNAME, args: ['joined'] },
        { op: Op.WAIT_START, args: [] },
        execOp('true'),
      ],
      {
        onMessage: (m) => {
          if (m.type === Msg.PID) pid = m.payload.readInt32LE(0);
          if (m.type === Msg.CHILD_DONE) done();
        },
      },
    );
    try {
      await childDone;
      const ns = (n: string) => `/proc/${pid}/ns/${n}`;
      const r = await runPlan([
        { op: Op.SETNS, args: [ns('ipc'), CLONE_NEWIPC] },
        { op: Op.SETNS, args: [ns('uts'), CLONE_NEWUTS] },
        { op: Op.SETNS, args: [ns('net'), CLONE_NEWNET] },
        { op: Op.SETNS, args: [ns('pid'), CLONE_NEWPID] },
        { op: Op.SETNS, args: [ns('mnt'), CLONE_NEWNS] },
        { op: Op.CLONE, args: [0] },
        { op: Op.FOREGROUND, args: [] },
        { op: Op.CHILD, args: [] },
        { op: Op.CLOSE_FDS, args: [3] },
        execOp('hostname; echo $$; ls /'),
      ]);
      assert.equal(errorOf(r), undefined, r.stderr);
      assert.deepEqual(types(r), [Msg.PID, Msg.CHILD_DONE, Msg.EXIT]);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines[0], 'joined');
      assert.notEqual(lines[1], '1');
      assert.ok(lines.includes('bin') && !lines.includes('usr'), 'sees the container root');
    } finally {
      const fh = await fs.promises.open(fifo, 'r');
      await fh.readFile();
      await fh.close();
      await init;
    }
  });

  test('a container process that dies early does not hang the parent', { timeout: 20_000 }, async () => {
    const r = await runPlan([
      { op: Op.CLONE, args: [CLONE_NEWNS] },
      { op: Op.CHILD, args: [] },
      { op: Op.HOOK, args: ['/bin/sh', 0, 3, 'sh', '-c', 'kill -9 $PPID'] },
      { op: Op.EXEC, args: ['/', 1, 'true', 'PATH=/usr/bin:/bin'] },
    ]);
    assert.equal(r.code, 1);
    assert.match(errorOf(r)?.message ?? '', /the container process was killed by signal 9 .* before it was ready/);
  });
});

async function mkfifo(p: string): Promise<void> {
  const c = spawn('mkfifo', ['-m', '0600', p], { stdio: 'inherit' });
  const [code] = (await once(c, 'close')) as [number];
  assert.equal(code, 0, 'mkfifo');
}
