import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { EngineEvent, StreamSession } from '../../engine/types.js';
import { FakeEngine } from './fake-engine.js';
import { parseFrames, frame } from './frames.js';
import { hasHead, RawConnection, request } from './http-client.js';
import { startDockerApi, type DockerApi } from './index.js';

/** A session whose output and input the test drives. */
function scriptedSession(tty: boolean): { session: StreamSession; output: PassThrough; input: PassThrough; closed: () => boolean } {
  const output = new PassThrough({ objectMode: true });
  const input = new PassThrough();
  let closed = false;
  const session: StreamSession = { tty, output, input, done: new Promise(() => undefined), close: () => (closed = true) };
  return { session, output, input, closed: () => closed };
}

function collect(stream: PassThrough): { text: () => string; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((r) => stream.on('end', r));
  return { text: () => Buffer.concat(chunks).toString(), ended };
}

describe('docker API streams', () => {
  let dir: string;
  let sock: string;
  let engine: FakeEngine;
  let api: DockerApi;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-api-'));
    sock = join(dir, 'api.sock');
    engine = new FakeEngine();
    api = await startDockerApi({ engine, socketPath: sock });
  });
  after(async () => {
    try {
      await api.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('wait sends the status line before the container exits', async () => {
    let exit!: (v: { StatusCode: number }) => void;
    const exited = new Promise<{ StatusCode: number }>((resolve) => (exit = resolve));
    engine.waitContainer = async () => ({ exited });
    const conn = await RawConnection.open(sock);
    conn.socket.write('POST /v1.41/containers/web/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n');
    await conn.until(hasHead, 'the status line');
    assert.match(conn.head().head, /^HTTP\/1\.1 200 OK/);
    assert.equal(conn.head().rest.length, 0);
    exit({ StatusCode: 7 });
    await conn.until((d) => d.includes('StatusCode'), 'the wait body');
    await conn.until((d) => d.includes('}\n'), 'the end of the body');
    assert.match(conn.data.toString(), /\{"StatusCode":7,"Error":null\}/);
    conn.socket.destroy();
  });

  it('wait answers an unknown container or condition with an error status', async () => {
    engine.waitContainer = FakeEngine.prototype.waitContainer;
    assert.equal((await request(sock, 'POST', '/containers/nosuch/wait')).status, 404);
    assert.equal((await request(sock, 'POST', '/containers/web/wait?condition=bogus')).status, 400);
    const ok = await request(sock, 'POST', '/containers/web/wait?condition=removed');
    assert.deepEqual(ok.json(), { StatusCode: 0, Error: null });
    assert.equal(engine.callsTo('waitContainer').at(-1)![1], 'removed');
  });

  it('wait reports a failed wait in the body', async () => {
    const exited = Promise.reject(new Error('monitor vanished'));
    exited.catch(() => undefined);
    engine.waitContainer = async () => ({ exited });
    const res = await request(sock, 'POST', '/containers/web/wait');
    assert.deepEqual(res.json(), { StatusCode: -1, Error: { Message: 'monitor vanished' } });
    engine.waitContainer = FakeEngine.prototype.waitContainer;
  });

  it('attach hijacks with 101, frames output, forwards stdin and half-close', async () => {
    const s = scriptedSession(false);
    let attachOpts: unknown;
    engine.attachContainer = async (_id, opts) => ((attachOpts = opts), s.session);
    const stdin = collect(s.input);
    const conn = await RawConnection.open(sock);
    conn.socket.write('POST /v1.47/containers/web/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n');
    await conn.until(hasHead, 'the 101');
    const { head } = conn.head();
    assert.match(head, /^HTTP\/1\.1 101 UPGRADED\r\n/);
    assert.match(head, /Content-Type: application\/vnd\.docker\.multiplexed-stream/);
    assert.match(head, /Connection: Upgrade/);
    assert.match(head, /Upgrade: tcp/);
    s.output.write({ stream: 1, data: Buffer.from('out\n') });
    s.output.write({ stream: 2, data: Buffer.from('err\n') });
    // Buffers are already framed (the monitor's own frames) and pass through as they are.
    s.output.write(frame(1, Buffer.from('raw\n')));
    await conn.until((d) => parseFrames(conn.head().rest).frames.length === 3, 'three frames');
    const frames = parseFrames(conn.head().rest).frames.map((f) => [f.stream, f.payload.toString()]);
    assert.deepEqual(frames, [[1, 'out\n'], [2, 'err\n'], [1, 'raw\n']]);
    conn.socket.write('typed\n');
    conn.socket.end();
    await stdin.ended;
    assert.equal(stdin.text(), 'typed\n');
    // The client's half-close leaves the output flowing.
    s.output.write({ stream: 1, data: Buffer.from('after\n') });
    s.output.end();
    await conn.untilEnd();
    assert.deepEqual(parseFrames(conn.head().rest).frames.map((f) => f.payload.toString()).at(-1), 'after\n');
    assert.deepEqual(attachOpts, { stdin: true, stdout: true, stderr: true, logs: false, stream: true });
    engine.attachContainer = FakeEngine.prototype.attachContainer;
  });

  it('attach with a tty sends raw bytes with the raw-stream type; 1.41 says raw-stream too', async () => {
    const s = scriptedSession(true);
    engine.attachContainer = async () => s.session;
    const conn = await RawConnection.open(sock);
    conn.socket.write('POST /v1.41/containers/web/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    await conn.until(hasHead, 'the 101');
    assert.match(conn.head().head, /Content-Type: application\/vnd\.docker\.raw-stream/);
    s.output.end({ stream: 1, data: Buffer.from('\x1b[1mbold\r\n') });
    await conn.untilEnd();
    assert.equal(conn.head().rest.toString(), '\x1b[1mbold\r\n');
    engine.attachContainer = FakeEngine.prototype.attachContainer;
  });

  it('attach to an unknown container answers 404 on the raw connection', async () => {
    const conn = await RawConnection.open(sock);
    conn.socket.write('POST /containers/nosuch/attach?stream=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    await conn.untilEnd();
    assert.match(conn.data.toString(), /^HTTP\/1\.1 404 Not Found/);
    assert.match(conn.data.toString(), /"message":"No such container: nosuch"/);
  });

  it('the client going away closes the session', async () => {
    const s = scriptedSession(false);
    engine.attachContainer = async () => s.session;
    const conn = await RawConnection.open(sock);
    conn.socket.write('POST /containers/web/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    await conn.until(hasHead, 'the 101');
    conn.socket.destroy();
    // A gone client looks like a half-close until the next write fails.
    for (let i = 0; i < 100 && !s.closed(); i++) {
      s.output.write({ stream: 1, data: Buffer.from('tick\n') });
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(s.closed());
    engine.attachContainer = FakeEngine.prototype.attachContainer;
  });

  it('attach without Upgrade answers 200 with the raw stream until the output ends', async () => {
    const conn = await RawConnection.open(sock);
    conn.socket.write('POST /containers/web/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n');
    await conn.untilEnd();
    const { head, rest } = conn.head();
    assert.match(head, /^HTTP\/1\.1 200 OK/);
    assert.doesNotMatch(head, /Transfer-Encoding/i);
    assert.deepEqual(parseFrames(rest).frames.map((f) => f.payload.toString()), ['hi\n']);
  });

  it('attach without Upgrade takes stdin from a streamed request body', async () => {
    const s = scriptedSession(false);
    engine.attachContainer = async () => s.session;
    const stdin = collect(s.input);
    const got: Buffer[] = [];
    const req = http.request({ socketPath: sock, method: 'POST', path: '/containers/web/attach?stream=1&stdin=1&stdout=1' });
    const response = new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    req.write('line one\n');
    const res = await response;
    assert.equal(res.statusCode, 200);
    res.on('data', (d: Buffer) => got.push(d));
    const ended = new Promise((r) => res.on('end', r));
    req.end('line two\n');
    await stdin.ended;
    assert.equal(stdin.text(), 'line one\nline two\n');
    s.output.end({ stream: 1, data: Buffer.from('bye\n') });
    await ended;
    assert.deepEqual(parseFrames(Buffer.concat(got)).frames.map((f) => f.payload.toString()), ['bye\n']);
    engine.attachContainer = FakeEngine.prototype.attachContainer;
  });

  it('exec start reads its JSON body from the upgraded connection; early stdin is kept', async () => {
    const s = scriptedSession(true);
    engine.startExec = async () => s.session;
    const stdin = collect(s.input);
    const body = JSON.stringify({ Detach: false, Tty: true, ConsoleSize: [24, 80] });
    const conn = await RawConnection.open(sock);
    conn.socket.write(`POST /v1.47/exec/${'e'.repeat(64)}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
    await new Promise((r) => setTimeout(r, 20));
    conn.socket.write(body.slice(5) + 'early');
    await conn.until(hasHead, 'the 101');
    assert.match(conn.head().head, /^HTTP\/1\.1 101 UPGRADED/);
    assert.deepEqual(engine.calls.filter((c) => c.method === 'startExec').length, 0);
    conn.socket.end();
    await stdin.ended;
    assert.equal(stdin.text(), 'early');
    s.output.end({ stream: 1, data: Buffer.from('$ ') });
    await conn.untilEnd();
    assert.equal(conn.head().rest.toString(), '$ ');
    engine.startExec = FakeEngine.prototype.startExec;
  });

  it('exec start of an unknown exec answers 404', async () => {
    const conn = await RawConnection.open(sock);
    conn.socket.write('POST /exec/nosuch/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}');
    await conn.untilEnd();
    assert.match(conn.data.toString(), /^HTTP\/1\.1 404/);
  });

  it('logs are multiplexed frames, with timestamps when asked', async () => {
    const res = await request(sock, 'GET', '/v1.47/containers/web/logs?stdout=1&stderr=1&timestamps=1&tail=10&since=1700000000.5');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/vnd.docker.multiplexed-stream');
    const frames = parseFrames(res.body).frames.map((f) => [f.stream, f.payload.toString()]);
    assert.deepEqual(frames, [
      [1, '2026-11-22T02:10:00.123456789Z hello\n'],
      [2, '2026-11-22T02:10:01.000000001Z oops\n'],
    ]);
    const opts = engine.callsTo('containerLogs').at(-1)![1] as { tail: number; since: number; follow: boolean };
    assert.equal(opts.tail, 10);
    assert.equal(opts.since, 1700000000.5);
    assert.equal(opts.follow, false);
    const old = await request(sock, 'GET', '/v1.41/containers/web/logs?stdout=1');
    assert.equal(old.headers['content-type'], 'application/vnd.docker.raw-stream');
    assert.deepEqual(parseFrames(old.body).frames.map((f) => f.payload.toString()), ['hello\n']);
  });

  it('a log read failing midway ends the stream with the error on stderr', async () => {
    const saved = engine.containerLogs;
    engine.containerLogs = async () => ({
      tty: false,
      records: (async function* () {
        yield { stream: 'stdout' as const, time: '2026-11-22T02:10:00.000000000Z', line: Buffer.from('first\n') };
        throw new Error('log file vanished');
      })(),
    });
    const res = await request(sock, 'GET', '/containers/web/logs?stdout=1&stderr=1');
    assert.equal(res.status, 200);
    assert.deepEqual(parseFrames(res.body).frames.map((f) => [f.stream, f.payload.toString()]), [[1, 'first\n'], [2, 'Error grabbing logs: log file vanished\n']]);
    engine.containerLogs = saved;
  });

  it('logs of a tty container are raw; no stream chosen is a 400', async () => {
    engine.logsTty = true;
    const res = await request(sock, 'GET', '/containers/web/logs?stdout=1&stderr=1');
    assert.equal(res.body.toString(), 'hello\noops\n');
    engine.logsTty = false;
    assert.equal((await request(sock, 'GET', '/containers/web/logs')).status, 400);
    assert.equal((await request(sock, 'GET', '/containers/web/logs?stdout=1&since=yesterday')).status, 400);
    assert.match((await request(sock, 'GET', '/containers/web/logs?stdout=1&details=1')).json<{ message: string }>().message, /details=1 is not supported/);
    assert.equal((await request(sock, 'GET', '/containers/nosuch/logs?stdout=1')).status, 404);
  });

  it('a pull error before any progress is a status; after, an errorDetail message', async () => {
    const before = await request(sock, 'POST', '/images/create?fromImage=nosuch&tag=latest');
    assert.equal(before.status, 404);
    assert.match(before.json<{ message: string }>().message, /pull access denied/);
    const mid = await request(sock, 'POST', '/images/create?fromImage=breaks&tag=1');
    assert.equal(mid.status, 200);
    assert.equal(mid.headers['content-type'], 'application/json');
    const lines = mid.body.toString().trim().split('\n').map((l) => JSON.parse(l) as object);
    assert.deepEqual(lines, [{ status: 'Pulling from library/breaks', id: '1' }, { errorDetail: { message: 'registry went away' }, error: 'registry went away' }]);
    const ok = await request(sock, 'POST', '/images/create?fromImage=busybox&tag=1.36&platform=linux/amd64', {
      headers: { 'X-Registry-Auth': Buffer.from(JSON.stringify({ username: 'u', password: 'p', serveraddress: 'localhost:5000' })).toString('base64url') },
    });
    assert.equal(ok.body.toString().trim().split('\n').length, 2);
    const call = engine.callsTo('pullImage').at(-1)![0] as { fromImage: string; tag: string; platform: string; auth: object };
    assert.deepEqual([call.fromImage, call.tag, call.platform, call.auth], ['busybox', '1.36', 'linux/amd64', { username: 'u', password: 'p', serveraddress: 'localhost:5000' }]);
    // dockerode sends standard base64 (with + and /), the docker CLI base64url.
    const std = Buffer.from(JSON.stringify({ username: 'u?>', password: 'p~~~' })).toString('base64');
    assert.match(std, /[+/]/);
    await request(sock, 'POST', '/images/create?fromImage=busybox', { headers: { 'X-Registry-Auth': std } });
    assert.deepEqual((engine.callsTo('pullImage').at(-1)![0] as { auth: object }).auth, { username: 'u?>', password: 'p~~~' });
    const badAuth = await request(sock, 'POST', '/images/create?fromImage=busybox', { headers: { 'X-Registry-Auth': 'bm90IGpzb24' } });
    assert.equal(badAuth.status, 400);
    assert.equal((await request(sock, 'POST', '/images/create')).status, 400);
  });

  it('push, load and import stream JSON messages', async () => {
    const push = await request(sock, 'POST', '/images/localhost:5000/a/b/push?tag=1', { headers: { 'X-Registry-Auth': 'e30=' } });
    assert.deepEqual(JSON.parse(push.body.toString()), { status: 'Pushed', id: 'layer' });
    assert.deepEqual(engine.callsTo('pushImage').at(-1)![0], { name: 'localhost:5000/a/b', tag: '1', onProgress: (engine.callsTo('pushImage').at(-1)![0] as { onProgress: unknown }).onProgress, signal: (engine.callsTo('pushImage').at(-1)![0] as { signal: unknown }).signal });
    const load = await request(sock, 'POST', '/images/load?quiet=1', { body: Buffer.alloc(5000) });
    assert.deepEqual(JSON.parse(load.body.toString()), { stream: 'Loaded image: busybox:latest (5000 bytes)\n' });
    const imp = await request(sock, 'POST', '/images/create?fromSrc=-&repo=imp&tag=v1&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3D1&message=hi', { body: Buffer.alloc(100) });
    assert.equal(imp.status, 200);
    const call = engine.callsTo('importImage').at(-1)![0] as { repo: string; tag: string; changes: string[]; message: string };
    assert.deepEqual([call.repo, call.tag, call.changes, call.message], ['imp', 'v1', ['CMD ["sh"]', 'ENV A=1'], 'hi']);
    assert.equal((await request(sock, 'POST', '/images/create?fromSrc=http://example.com/x.tar')).status, 400);
  });

  it('image save: a tar, or an error status when the engine fails first', async () => {
    const one = await request(sock, 'GET', '/images/busybox/get');
    assert.equal(one.status, 200);
    assert.equal(one.headers['content-type'], 'application/x-tar');
    assert.equal(one.body.length, 1024);
    const many = await request(sock, 'GET', '/images/get?names=busybox&names=localhost:5000/a/b:1');
    assert.equal(many.body.length, 1024);
    assert.deepEqual(engine.callsTo('saveImages').at(-1)![0], ['busybox', 'localhost:5000/a/b:1']);
    assert.equal((await request(sock, 'GET', '/images/get?names=nosuch')).status, 404);
  });

  it('events stream past events at once and stop when the client leaves', async () => {
    const ev: EngineEvent = { Type: 'container', Action: 'start', Actor: { ID: 'x', Attributes: { name: 'web' } }, scope: 'local', time: 1700000000, timeNano: 1700000000000000000 };
    engine.eventList = [ev];
    const conn = await RawConnection.open(sock);
    conn.socket.write('GET /v1.47/events?since=1600000000&filters=%7B%22type%22%3A%5B%22container%22%5D%7D HTTP/1.1\r\nHost: x\r\n\r\n');
    await conn.until((d) => d.includes('"Action":"start"'), 'the event');
    assert.match(conn.head().head, /^HTTP\/1\.1 200/);
    const opts = engine.callsTo('events').at(-1)![0] as { since: number; filters: object; signal: AbortSignal };
    assert.equal(opts.since, 1600000000);
    assert.deepEqual(opts.filters, { type: ['container'] });
    conn.socket.destroy();
    for (let i = 0; i < 100 && !opts.signal.aborted; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(opts.signal.aborted);
    const bounded = await request(sock, 'GET', '/events?since=1&until=2');
    assert.equal(bounded.body.toString().trim().split('\n').length, 1);
  });

  it('stats: one sample as JSON, or a stream of lines', async () => {
    const one = await request(sock, 'GET', '/containers/web/stats?stream=0');
    assert.equal(one.json<{ id: string }>().id.length, 64);
    const stream = await request(sock, 'GET', '/containers/web/stats');
    assert.equal(stream.body.toString().trim().split('\n').length, 2);
    assert.equal((await request(sock, 'GET', '/containers/nosuch/stats?stream=0')).status, 404);
    assert.equal((await request(sock, 'GET', '/containers/web/stats?stream=1&one-shot=1')).status, 400);
  });

  it('export streams a tar', async () => {
    const res = await request(sock, 'GET', '/containers/web/export');
    assert.equal(res.headers['content-type'], 'application/x-tar');
    assert.equal(res.body.length, 1024);
  });

  it('close ends open streams and hijacked connections', async () => {
    const sock2 = join(dir, 'closing.sock');
    const engine2 = new FakeEngine();
    const s = scriptedSession(false);
    engine2.attachContainer = async () => s.session;
    const api2 = await startDockerApi({ engine: engine2, socketPath: sock2 });
    const events = await RawConnection.open(sock2);
    events.socket.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
    await events.until(hasHead, 'the events head');
    const attach = await RawConnection.open(sock2);
    attach.socket.write('POST /containers/web/attach?stream=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    await attach.until(hasHead, 'the 101');
    await api2.close();
    await events.untilEnd();
    await attach.untilEnd();
    assert.ok(s.closed());
  });
});
