import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, EscapeDetector, FrameDemuxer, parseDetachKeys } from './streams.js';
import { containerExitCode, startFailureExitCode } from './exit-codes.js';
import { ProgressPrinter, fullyQualified, progressBar, splitReference, withDefaultTag } from './progress.js';
import { decodePathStat, isDirStat, rebase, splitCpArg } from './files.js';
import { filtersJson, buildQuery, errorMessage } from './client.js';
import { socketFromHost } from '../berth.js';

test('demux: frames split at every possible byte boundary', () => {
  const wire = Buffer.concat([encodeFrame(1, Buffer.from('hello\n')), encodeFrame(2, Buffer.from('oops\n')), encodeFrame(1, Buffer.alloc(0)), encodeFrame(1, Buffer.from('bye'))]);
  for (let cut = 0; cut <= wire.length; cut++) {
    const out: Record<number, string> = { 1: '', 2: '' };
    const d = new FrameDemuxer((s, p) => (out[s] += p.toString()));
    d.push(wire.subarray(0, cut));
    d.push(wire.subarray(cut));
    assert.deepEqual(out, { 1: 'hello\nbye', 2: 'oops\n' }, `cut at ${cut}`);
    assert.equal(d.truncated, false);
  }
  const byByte: string[] = [];
  const d = new FrameDemuxer((s, p) => byByte.push(`${s}:${p.toString()}`));
  for (const b of wire) d.push(Buffer.from([b]));
  assert.equal(byByte.filter((x) => x.startsWith('2:')).join('').replace(/2:/g, ''), 'oops\n');
  const t = new FrameDemuxer(() => {});
  t.push(wire.subarray(0, 10));
  assert.equal(t.truncated, true);
});

test('detach keys: ctrl-p ctrl-q detaches; a broken sequence is passed on', () => {
  assert.deepEqual(parseDetachKeys('ctrl-p,ctrl-q'), [16, 17]);
  assert.deepEqual(parseDetachKeys('a,ctrl-@,ctrl-['), [97, 0, 27]);
  assert.throws(() => parseDetachKeys('ctrl-1'), /Invalid detach keys/);
  const d = new EscapeDetector([16, 17]);
  let r = d.feed(Buffer.from([104, 16]));
  assert.deepEqual([...r.forward], [104]);
  assert.equal(r.detached, false);
  r = d.feed(Buffer.from([105]));
  assert.deepEqual([...r.forward], [16, 105]);
  r = d.feed(Buffer.from([16, 16]));
  assert.deepEqual([...r.forward], [16]);
  r = d.feed(Buffer.from([17, 120]));
  assert.equal(r.detached, true);
  const one = new EscapeDetector([3]);
  assert.equal(one.feed(Buffer.from([1, 3])).detached, true);
});

test('exit codes: docker mapping of start failures and container statuses', () => {
  assert.equal(startFailureExitCode('failed to create task: exec: "nope": executable file not found in $PATH'), 127);
  assert.equal(startFailureExitCode('exec /bin/x: no such file or directory'), 127);
  assert.equal(startFailureExitCode('Error response from daemon: exec /etc/passwd: permission denied'), 126);
  assert.equal(startFailureExitCode('exec /etc: is a directory'), 126);
  assert.equal(startFailureExitCode('cgroup: something'), 125);
  assert.equal(containerExitCode(0), 0);
  assert.equal(containerExitCode(137), 137);
  assert.equal(containerExitCode(-1), 255);
});

test('progress: plain lines without a terminal, redraws on one', () => {
  let out = '';
  const w = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream as import('node:stream').Writable;
  const plain = new ProgressPrinter(w, false);
  plain.handle({ status: 'Pulling from library/busybox', id: 'latest' });
  plain.handle({ status: 'Pulling fs layer', id: 'abc' });
  plain.handle({ status: 'Downloading', id: 'abc', progressDetail: { current: 10, total: 100 } });
  plain.handle({ status: 'Pull complete', id: 'abc' });
  plain.handle({ status: 'Digest: sha256:x' });
  assert.equal(out, 'latest: Pulling from library/busybox\nabc: Pulling fs layer\nabc: Pull complete\nDigest: sha256:x\n');
  assert.throws(() => plain.handle({ errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown' }), /manifest unknown/);

  out = '';
  const tty = new ProgressPrinter(w, true);
  tty.handle({ status: 'Pulling fs layer', id: 'a' });
  tty.handle({ status: 'Pulling fs layer', id: 'b' });
  tty.handle({ status: 'Downloading', id: 'a', progress: '[==>   ] 1MB/2MB' });
  assert.equal(out, '\x1b[2K\ra: Pulling fs layer\n\x1b[2K\rb: Pulling fs layer\n\x1b[2A\x1b[2K\ra: Downloading [==>   ] 1MB/2MB\x1b[2B\r');
  assert.equal(progressBar(50, 100, 10), '[=====>    ]      50B/100B');
});

test('references: split for the API, default tag, fully qualified', () => {
  assert.deepEqual(splitReference('busybox'), { name: 'busybox' });
  assert.deepEqual(splitReference('localhost:5000/a/b:1.0'), { name: 'localhost:5000/a/b', tag: '1.0' });
  assert.deepEqual(splitReference('a@sha256:00'), { name: 'a', digest: 'sha256:00' });
  assert.equal(withDefaultTag('localhost:5000/x'), 'localhost:5000/x:latest');
  assert.equal(fullyQualified('busybox'), 'docker.io/library/busybox:latest');
  assert.equal(fullyQualified('me/app:2'), 'docker.io/me/app:2');
  assert.equal(fullyQualified('localhost:5000/app'), 'localhost:5000/app:latest');
});

test('cp arguments and archive names', () => {
  assert.deepEqual(splitCpArg('web:/etc/hosts'), { container: 'web', path: '/etc/hosts' });
  assert.deepEqual(splitCpArg('./a:b'), { path: './a:b' });
  assert.deepEqual(splitCpArg('/tmp/x'), { path: '/tmp/x' });
  assert.equal(rebase('etc/hosts'), 'hosts');
  assert.equal(rebase('etc'), '');
  assert.equal(rebase('./etc/a/b'), 'a/b');
  assert.equal(rebase('etc/../../x'), undefined);
  const stat = decodePathStat(Buffer.from(JSON.stringify({ name: 'etc', size: 0, mode: 2 ** 31 + 0o755, mtime: '', linkTarget: '' })).toString('base64'));
  assert.ok(stat && isDirStat(stat));
});

test('client helpers: query strings, filters, error bodies, hosts', () => {
  assert.equal(buildQuery({ all: true, size: false, limit: 3, name: 'a b', skip: undefined, names: ['x', 'y'] }), '?all=1&size=0&limit=3&name=a%20b&names=x&names=y');
  assert.equal(filtersJson(['status=exited', 'label=a=b', 'status=created']), '{"status":["exited","created"],"label":["a=b"]}');
  assert.throws(() => filtersJson(['nonsense']), /bad format of filter/);
  assert.equal(errorMessage(404, Buffer.from('{"message":"No such container: x"}')), 'No such container: x');
  assert.equal(errorMessage(500, Buffer.from('plain text')), 'plain text');
  assert.equal(errorMessage(502, Buffer.alloc(0)), '502 Bad Gateway');
  assert.equal(socketFromHost('unix:///run/x.sock'), '/run/x.sock');
  assert.throws(() => socketFromHost('tcp://1.2.3.4:2375'), /unix socket only/);
});
