// berth-exec driven directly with hand-written plans (root). The channel protocol is
// spoken here on purpose: this tests the C side of the contract in native/plan.h.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type StdioOptions } from 'node:child_process';
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
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
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
      { op: Op.USER, args: [1000, 1000, -1] },
      { op: Op.CAPS, args: [0, 0, 0, 0, 0] },
      { op: Op.EXEC, args: ['/', 3, '/bin/sh', '-c', 'id -u; id -g; ulimit -n; ulimit -Hn; grep -E "^Cap(Eff|Bnd)" /proc/self/status', 'PATH=/usr/bin:/bin'] },
    ]);
    assert.equal(errorOf(r), undefined, r.stderr);
    assert.equal(r.code, 0);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 4), ['1000', '1000', '1000', '2000']);
    assert.deepEqual(lines.slice(4).map((l) => l.replace(/\s+/g, ' ')), ['CapEff: 0000000000000000', 'CapBnd: 0000000000000000']);
  });

  test('a hard rlimit above the host limit is clamped with a warning', { timeout: 20_000 }, async () => {
    const r = await runPlan([
      { op: Op.CLONE, args: [CLONE_NEWUSER] },
      { op: Op.UIDMAP, args: ['0 100000 65536\n'] },
      { op: Op.GIDMAP, args: ['0 100000 65536\n'] },
      { op: Op.CHILD, args: [] },
      { op: Op.RLIMIT, args: [RLIMIT_NOFILE, 1 << 30, 1 << 30] },
      { op: Op.EXEC, args: ['/', 3, '/bin/sh', '-c', 'ulimit -Hn', 'PATH=/usr/bin:/bin'] },
    ]);
    assert.equal(errorOf(r), undefined, r.stderr);
    const w = r.messages.find((m) => m.type === Msg.WARNING);
    assert.ok(w, 'a warning was sent');
    assert.match(w.payload.toString(), /^rlimit RLIMIT_NOFILE: hard limit 1073741824 exceeds the host's \d+, clamped$/);
    assert.notEqual(r.stdout.trim(), String(1 << 30));
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
