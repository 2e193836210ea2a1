import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  consoleSocketPath,
  encodeFrame,
  Frame,
  FrameDecoder,
  helloFrame,
  monitorArgv,
  monitorBinaryPath,
  parseExitInfo,
  readExit,
  readMonitorInfo,
  resizeFrame,
} from './monitor.js';
import { isBerthError } from '../errors.js';

test('frames carry Docker’s 8-byte header with a big-endian length', () => {
  const f = encodeFrame(Frame.Stdout, Buffer.from('hi'));
  assert.deepEqual([...f], [1, 0, 0, 0, 0, 0, 0, 2, 0x68, 0x69]);
  assert.deepEqual([...encodeFrame(Frame.StdinClose)], [17, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...helloFrame({ stdout: true, stdin: true })], [16, 0, 0, 0, 0, 0, 0, 1, 5]);
  assert.deepEqual([...helloFrame({})], [16, 0, 0, 0, 0, 0, 0, 1, 0]);
  assert.deepEqual([...resizeFrame(40, 300)], [18, 0, 0, 0, 0, 0, 0, 4, 0, 40, 1, 44]);
  assert.throws(() => resizeFrame(70000, 1), (e) => isBerthError(e, 'InvalidArgument'));
});

test('the decoder reassembles frames split anywhere and keeps the rest', () => {
  const big = Buffer.alloc(70000, 7);
  const all = Buffer.concat([encodeFrame(Frame.Stdout, Buffer.from('a\n')), encodeFrame(Frame.Stderr, big), encodeFrame(Frame.Exit, Buffer.from('{}'))]);
  for (const step of [1, 3, 8, 9, 4096, all.length]) {
    const d = new FrameDecoder();
    const got: { type: number; payload: Buffer }[] = [];
    for (let off = 0; off < all.length; off += step) got.push(...d.push(all.subarray(off, off + step)));
    assert.equal(got.length, 3, `step ${step}`);
    assert.deepEqual(
      got.map((f) => f.type),
      [1, 2, 3],
    );
    assert.equal(got[0]!.payload.toString(), 'a\n');
    assert.ok(got[1]!.payload.equals(big));
    assert.equal(d.pending, 0);
  }
  const d = new FrameDecoder();
  assert.deepEqual(d.push(Buffer.from([1, 0, 0, 0, 0, 0, 0, 5, 1])), []);
  assert.equal(d.pending, 9);
});

test('monitorArgv puts every option before -- and refuses bad numbers', () => {
  const argv = monitorArgv({
    runDir: '/run/berth/containers/x',
    logPath: '/var/lib/berth/containers/x/x-json.log',
    logMaxSize: 1024,
    logMaxFiles: 2,
    tty: true,
    stdin: true,
    stdinOnce: true,
    oomFiles: ['/sys/fs/cgroup/memory/x/memory.oom_control'],
    waitAttachMs: 500,
  });
  assert.equal(argv[0], monitorBinaryPath());
  assert.deepEqual(argv.slice(1), [
    '--dir',
    '/run/berth/containers/x',
    '--log',
    '/var/lib/berth/containers/x/x-json.log',
    '--log-max-size',
    '1024',
    '--log-max-files',
    '2',
    '--tty',
    '--stdin',
    '--stdin-once',
    '--oom-file',
    '/sys/fs/cgroup/memory/x/memory.oom_control',
    '--wait-attach',
    '500',
    '--',
  ]);
  assert.deepEqual(monitorArgv({ runDir: '/r', stdinOnce: true }).slice(1), ['--dir', '/r', '--no-log', '--']);
  assert.throws(() => monitorArgv({ runDir: '/r', logPath: '/l', logMaxFiles: Number('x') }), (e) => isBerthError(e, 'InvalidArgument') && /max-file/.test(e.message));
  assert.throws(() => monitorArgv({ runDir: '/r', logPath: '/l', logMaxSize: 1.5 }), (e) => isBerthError(e, 'InvalidArgument') && /max-size/.test(e.message));
  assert.throws(() => monitorArgv({ runDir: 'relative' }));
  // An exec's run dir under a container's (64 + 64 hex ids) would not fit in sockaddr_un.
  assert.throws(() => monitorArgv({ runDir: `/run/berth/containers/${'a'.repeat(64)}/exec/${'b'.repeat(64)}` }), /longer than 107 bytes/);
  assert.equal(consoleSocketPath('/r'), '/r/console.sock');
});

test('BERTH_MONITOR overrides the binary', () => {
  const old = process.env.BERTH_MONITOR;
  process.env.BERTH_MONITOR = '/opt/m';
  try {
    assert.equal(monitorArgv({ runDir: '/r' })[0], '/opt/m');
  } finally {
    if (old === undefined) delete process.env.BERTH_MONITOR;
    else process.env.BERTH_MONITOR = old;
  }
});

test('exit.json and monitor.json are read and checked', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-monitor-unit-'));
  try {
    assert.equal(readExit(dir), undefined);
    assert.equal(readMonitorInfo(dir), undefined);
    const exit = { exitCode: 137, signal: 9, oomKilled: true, startedAt: '2026-11-22T02:10:00.123456789Z', finishedAt: '2026-11-22T02:10:01.000000000Z' };
    writeFileSync(join(dir, 'exit.json'), JSON.stringify(exit) + '\n');
    assert.deepEqual(readExit(dir), exit);
    writeFileSync(join(dir, 'monitor.json'), '{"monitorPid":10,"containerPid":11}\n');
    assert.deepEqual(readMonitorInfo(dir), { monitorPid: 10, containerPid: 11 });
    writeFileSync(join(dir, 'exit.json'), '{"exitCode":"1"}');
    assert.throws(() => readExit(dir), (e) => isBerthError(e, 'Internal'));
    assert.throws(() => parseExitInfo('nope', 'x'), (e) => isBerthError(e, 'Internal'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
