import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isBerthError } from '../errors.js';
import { readLogs, type CorruptReport, type ReadLogsOptions } from './logs.js';
import type { LogRecord } from './types.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-logs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** 2026-11-22T02:10:00Z plus `s` seconds and `ns` nanoseconds. */
function time(s: number, ns = 0): string {
  const base = Date.UTC(2026, 10, 22, 2, 10, 0) + s * 1000;
  return new Date(base).toISOString().slice(0, 19) + '.' + String(ns).padStart(9, '0') + 'Z';
}
const BASE = Date.UTC(2026, 10, 22, 2, 10, 0) / 1000;

function entry(stream: 'stdout' | 'stderr', log: string, t: string): string {
  return JSON.stringify({ log, stream, time: t }) + '\n';
}

/** Lines "name 0\n" … with one second between them. */
function lines(stream: 'stdout' | 'stderr', name: string, from: number, count: number): string {
  let s = '';
  for (let i = from; i < from + count; i++) s += entry(stream, `${name} ${i}\n`, time(i));
  return s;
}

async function collect(opts: ReadLogsOptions): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of readLogs(opts)) out.push(r);
  return out;
}

const text = (records: LogRecord[]): string[] => records.map((r) => r.line.toString('utf8'));

test('reads rotated files oldest first, then the current one', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'c-json.log');
  writeFileSync(`${path}.2`, lines('stdout', 'a', 0, 2));
  writeFileSync(`${path}.1`, lines('stdout', 'a', 2, 2));
  writeFileSync(path, lines('stdout', 'a', 4, 2));
  const records = await collect({ path, stdout: true, stderr: true });
  assert.deepEqual(text(records), ['a 0\n', 'a 1\n', 'a 2\n', 'a 3\n', 'a 4\n', 'a 5\n']);
  assert.deepEqual(records[0], { stream: 'stdout', time: time(0), line: Buffer.from('a 0\n') });
});

test('chooses streams; asking for none is refused at once', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, entry('stdout', 'out\n', time(0)) + entry('stderr', 'err\n', time(1)) + entry('stdout', 'out2\n', time(2)));
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: false })), ['out\n', 'out2\n']);
  assert.deepEqual(text(await collect({ path, stdout: false, stderr: true })), ['err\n']);
  assert.throws(() => readLogs({ path, stdout: false, stderr: false }), (err: unknown) => isBerthError(err, 'InvalidArgument') && /at least one stream/.test(err.message));
});

test('a missing log is empty', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  assert.deepEqual(await collect({ path, stdout: true, stderr: true }), []);
  assert.deepEqual(await collect({ path, stdout: true, stderr: true, tail: 5 }), []);
});

test('partial pieces are joined per stream into one record', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(
    path,
    entry('stdout', 'long ', time(0)) +
      entry('stderr', 'error\n', time(1)) +
      entry('stdout', 'line', time(2)) +
      entry('stdout', ' end\n', time(3)) +
      entry('stdout', 'no newline at exit', time(4)),
  );
  const records = await collect({ path, stdout: true, stderr: true });
  assert.deepEqual(
    records.map((r) => [r.stream, r.time, r.line.toString()]),
    [
      ['stderr', time(1), 'error\n'],
      ['stdout', time(0), 'long line end\n'],
      ['stdout', time(4), 'no newline at exit'],
    ],
  );
});

test('tail counts records from the end across files and streams', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(`${path}.1`, lines('stdout', 'a', 0, 5));
  writeFileSync(path, lines('stdout', 'a', 5, 2) + entry('stderr', 'e 7\n', time(7)) + lines('stdout', 'a', 8, 1));
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, tail: 2 })), ['e 7\n', 'a 8\n']);
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: false, tail: 3 })), ['a 5\n', 'a 6\n', 'a 8\n']);
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: false, tail: 5 })), ['a 3\n', 'a 4\n', 'a 5\n', 'a 6\n', 'a 8\n']);
  assert.equal((await collect({ path, stdout: true, stderr: true, tail: 100 })).length, 9);
  assert.equal((await collect({ path, stdout: true, stderr: true, tail: 'all' })).length, 9);
  assert.equal((await collect({ path, stdout: true, stderr: true, tail: -1 })).length, 9);
  assert.deepEqual(await collect({ path, stdout: true, stderr: true, tail: 0 }), []);
});

test('tail keeps a joined record whole', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, lines('stdout', 'a', 0, 3) + entry('stdout', 'part ', time(3)) + entry('stderr', 'e\n', time(4)) + entry('stdout', 'one\n', time(5)));
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: false, tail: 1 })), ['part one\n']);
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, tail: 2 })), ['e\n', 'part one\n']);
});

test('tail reads only the end of a large file', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  // Garbage at the start: a tail that parsed the whole file would report it as corrupt.
  const garbage = 'not json\n'.repeat(200_000);
  writeFileSync(path, garbage + lines('stdout', 'a', 0, 1000));
  let report: CorruptReport | undefined;
  const records = await collect({ path, stdout: true, stderr: true, tail: 3, onCorrupt: (r) => (report = r) });
  assert.deepEqual(text(records), ['a 997\n', 'a 998\n', 'a 999\n']);
  assert.equal(report, undefined);
});

test('since and until filter at nanosecond precision, inclusive', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, entry('stdout', 'x\n', time(1, 999_999_999)) + entry('stdout', 'y\n', time(2, 1)) + entry('stdout', 'z\n', time(3, 0)));
  const since = `${BASE + 2}.000000001`;
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, since })), ['y\n', 'z\n']);
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, since: `${BASE + 2}.000000002` })), ['z\n']);
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, until: since })), ['x\n', 'y\n']);
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, since: BASE + 2, until: BASE + 2.5 })), ['y\n']);
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, since: BASE + 2, tail: 5 })), ['y\n', 'z\n']);
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, until: BASE + 2.5, tail: 1 })), ['y\n']);
  // 0 means "not set", as Docker.
  assert.equal((await collect({ path, stdout: true, stderr: true, since: 0, until: 0 })).length, 3);
});

test('since skips rotated files that end before it', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  // Garbage in the old file: reading it would report it as corrupt.
  writeFileSync(`${path}.2`, 'not json\n' + lines('stdout', 'a', 0, 2));
  writeFileSync(`${path}.1`, lines('stdout', 'a', 2, 2));
  writeFileSync(path, lines('stdout', 'a', 4, 2));
  let report: CorruptReport | undefined;
  const records = await collect({ path, stdout: true, stderr: true, since: BASE + 3, onCorrupt: (r) => (report = r) });
  assert.deepEqual(text(records), ['a 3\n', 'a 4\n', 'a 5\n']);
  assert.equal(report, undefined);
});

test('times in other RFC 3339 spellings (Docker trims zeros, zones) compare by value', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(
    path,
    entry('stdout', 'a\n', '2026-11-22T02:10:01.5Z') + entry('stdout', 'b\n', '2026-11-22T04:10:02+02:00') + entry('stdout', 'c\n', '2026-11-22T02:10:03.000000001Z'),
  );
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, since: BASE + 1.6 })), ['b\n', 'c\n']);
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, until: `${BASE + 3}` })), ['a\n', 'b\n']);
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, since: `${BASE + 1}.5`, until: `${BASE + 2}` })), ['a\n', 'b\n']);
});

test('a piece begun before until is still shown when a later record ends the read', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, entry('stdout', 'begun ', time(1)) + entry('stderr', 'late\n', time(9)) + entry('stdout', 'never\n', time(10)));
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, until: BASE + 5 })), ['begun ']);
});

test('the same iterable can be read twice', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, entry('stdout', 'part ', time(0)) + entry('stdout', 'one\n', time(1)));
  const logs = readLogs({ path, stdout: true, stderr: true });
  const first: string[] = [];
  for await (const r of logs) first.push(r.line.toString());
  const second: string[] = [];
  for await (const r of logs) second.push(r.line.toString());
  assert.deepEqual(first, ['part one\n']);
  assert.deepEqual(second, first);
});

test('corrupt lines are skipped, counted and reported once', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, lines('stdout', 'a', 0, 1) + 'garbage\n' + '{"log":1}\n' + lines('stdout', 'a', 1, 1) + '{"nope":\n');
  const reports: CorruptReport[] = [];
  const records = await collect({ path, stdout: true, stderr: true, onCorrupt: (r) => reports.push(r) });
  assert.deepEqual(text(records), ['a 0\n', 'a 1\n']);
  assert.deepEqual(reports, [{ count: 3, file: path, example: 'garbage' }]);
});

test('non-UTF-8 replacement characters and escapes survive', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, entry('stdout', 'caf\u00e9 \ufffd "quoted" \t\n', time(0)));
  const [r] = await collect({ path, stdout: true, stderr: true });
  assert.equal(r.line.toString('utf8'), 'caf\u00e9 \ufffd "quoted" \t\n');
});

test('an over-long line is skipped without growing memory', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, lines('stdout', 'a', 0, 1) + 'x'.repeat(3 << 20) + '\n' + lines('stdout', 'a', 1, 1));
  const reports: CorruptReport[] = [];
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, onCorrupt: (r) => reports.push(r) })), ['a 0\n', 'a 1\n']);
  assert.equal(reports[0].count, 1);
  reports.length = 0;
  assert.deepEqual(text(await collect({ path, stdout: true, stderr: true, tail: 5, onCorrupt: (r) => reports.push(r) })), ['a 0\n', 'a 1\n']);
  assert.equal(reports[0].count, 1);
});

/** Reads a follow stream in the background. */
function follow(opts: ReadLogsOptions): { records: LogRecord[]; done: Promise<void>; until: (n: number) => Promise<void> } {
  const records: LogRecord[] = [];
  const done = (async () => {
    for await (const r of readLogs({ pollMs: 20, ...opts, follow: true })) records.push(r);
  })();
  const until = async (n: number): Promise<void> => {
    for (let i = 0; i < 500 && records.length < n; i++) await sleep(10);
    assert.ok(records.length >= n, `expected ${n} records, have ${records.length}: ${JSON.stringify(text(records))}`);
  };
  return { records, done, until };
}

function stopper(): { stopped: Promise<void>; stop: () => void } {
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  return { stopped, stop };
}

test('follow reads appends, waits out torn lines, and drains when stopped', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, lines('stdout', 'a', 0, 2));
  const { stopped, stop } = stopper();
  const f = follow({ path, stdout: true, stderr: true, stopped });
  await f.until(2);
  const next = entry('stderr', 'err 2\n', time(2));
  appendFileSync(path, next.slice(0, 10));
  await sleep(60);
  assert.equal(f.records.length, 2);
  appendFileSync(path, next.slice(10));
  await f.until(3);
  appendFileSync(path, entry('stderr', 'half ', time(3)));
  appendFileSync(path, lines('stdout', 'a', 4, 1));
  stop();
  await f.done;
  assert.deepEqual(text(f.records), ['a 0\n', 'a 1\n', 'err 2\n', 'a 4\n', 'half ']);
});

test('follow with tail starts at the end', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, lines('stdout', 'a', 0, 5));
  const { stopped, stop } = stopper();
  const f = follow({ path, stdout: true, stderr: true, stopped, tail: 1 });
  await f.until(1);
  appendFileSync(path, lines('stdout', 'a', 5, 1));
  await f.until(2);
  stop();
  await f.done;
  assert.deepEqual(text(f.records), ['a 4\n', 'a 5\n']);

  const g = stopper();
  const h = follow({ path, stdout: true, stderr: true, stopped: g.stopped, tail: 0 });
  await sleep(50);
  appendFileSync(path, lines('stdout', 'a', 6, 1));
  await h.until(1);
  g.stop();
  await h.done;
  assert.deepEqual(text(h.records), ['a 6\n']);
});

test('follow continues across rotations, including several between two looks', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, lines('stdout', 'a', 0, 1));
  const { stopped, stop } = stopper();
  const f = follow({ path, stdout: true, stderr: true, stopped });
  await f.until(1);
  // The writer adds to the file, renames it, and starts a new one.
  appendFileSync(path, lines('stdout', 'a', 1, 1));
  renameSync(path, `${path}.1`);
  writeFileSync(path, lines('stdout', 'a', 2, 1));
  await f.until(3);
  // Two rotations at once: the reader must also read the file that is now .1.
  appendFileSync(path, lines('stdout', 'a', 3, 1));
  renameSync(`${path}.1`, `${path}.3`);
  renameSync(path, `${path}.2`);
  writeFileSync(`${path}.1`, lines('stdout', 'a', 4, 1));
  writeFileSync(path, lines('stdout', 'a', 5, 1));
  await f.until(6);
  stop();
  await f.done;
  assert.deepEqual(text(f.records), ['a 0\n', 'a 1\n', 'a 2\n', 'a 3\n', 'a 4\n', 'a 5\n']);
});

test('follow waits for a log that does not exist yet', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  const { stopped, stop } = stopper();
  const f = follow({ path, stdout: true, stderr: true, stopped });
  await sleep(50);
  writeFileSync(path, lines('stdout', 'a', 0, 1));
  await f.until(1);
  stop();
  await f.done;
  assert.deepEqual(text(f.records), ['a 0\n']);
});

test('follow polls when the directory cannot be watched yet', async (t) => {
  const dir = join(tempDir(t), 'containers', 'c1');
  const path = join(dir, 'c-json.log');
  const { stopped, stop } = stopper();
  const f = follow({ path, stdout: true, stderr: true, stopped });
  await sleep(50);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, lines('stdout', 'a', 0, 1));
  await f.until(1);
  appendFileSync(path, lines('stdout', 'a', 1, 1));
  await f.until(2);
  stop();
  await f.done;
  assert.deepEqual(text(f.records), ['a 0\n', 'a 1\n']);
});

test('follow ends at once when the signal aborts, or when the consumer stops', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, lines('stdout', 'a', 0, 1));
  const ac = new AbortController();
  const f = follow({ path, stdout: true, stderr: true, signal: ac.signal });
  await f.until(1);
  ac.abort();
  await f.done;
  assert.equal(f.records.length, 1);

  for await (const r of readLogs({ path, stdout: true, stderr: true, follow: true })) {
    assert.equal(r.line.toString(), 'a 0\n');
    break;
  }
});

test('follow stops at until', async (t) => {
  const path = join(tempDir(t), 'c-json.log');
  writeFileSync(path, lines('stdout', 'a', 0, 2) + lines('stdout', 'a', 10, 1));
  const f = follow({ path, stdout: true, stderr: true, until: BASE + 5 });
  await f.done;
  assert.deepEqual(text(f.records), ['a 0\n', 'a 1\n']);
  // An until already passed by the clock ends the follow after the existing content.
  const now = Date.now() / 1000;
  writeFileSync(path, entry('stdout', 'old\n', new Date((now - 10) * 1000).toISOString()));
  const g = follow({ path, stdout: true, stderr: true, until: now - 1 });
  await g.done;
  assert.deepEqual(text(g.records), ['old\n']);
});
