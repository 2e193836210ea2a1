// The whole CLI against a fake Docker Engine API on a unix socket in a temp dir: the requests
// berth sends (paths, queries, bodies, order) and what it prints and exits with.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync, readFileSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { Duplex } from 'node:stream';
import { main, type CliIo } from '../berth.js';
import { encodeFrame } from './streams.js';
import { TarWriter, readTar } from '../../image/unpack/tar.js';

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  body: string;
  headers: http.IncomingHttpHeaders;
}

type Handler = (req: Seen, res: http.ServerResponse) => void;
type UpgradeHandler = (req: Seen, socket: Duplex) => void;

let dir: string;
let socket: string;
let server: http.Server;
let seen: Seen[] = [];
let routes: Record<string, Handler> = {};
let upgrades: Record<string, UpgradeHandler> = {};

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-cli-'));
  socket = path.join(dir, 'api.sock');
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      const s: Seen = { method: req.method ?? '', path: u.pathname, query: u.searchParams, body: Buffer.concat(chunks).toString('latin1'), headers: req.headers };
      seen.push(s);
      const h = routes[`${s.method} ${s.path}`];
      if (h) h(s, res);
      else json(res, 404, { message: `no route ${s.method} ${s.path}` });
    });
  });
  server.on('upgrade', (req: http.IncomingMessage, sock: Duplex, head: Buffer) => {
    const u = new URL(req.url ?? '/', 'http://x');
    let body = head.toString();
    const s: Seen = { method: req.method ?? '', path: u.pathname, query: u.searchParams, body, headers: req.headers };
    const len = Number(req.headers['content-length'] ?? 0);
    const go = (): void => {
      s.body = body;
      seen.push(s);
      const h = upgrades[`${s.method} ${s.path}`];
      if (!h) {
        sock.end('HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{"message":"no route"}');
        return;
      }
      sock.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
      h(s, sock);
    };
    if (body.length >= len) go();
    else {
      // The body of an upgraded request arrives on the socket itself.
      const onData = (c: Buffer): void => {
        body += c.toString();
        if (body.length >= len) {
          sock.off('data', onData);
          go();
        }
      };
      sock.on('data', onData);
    }
  });
  await new Promise<void>((r) => server.listen(socket, r));
});

after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

function reset(r: Record<string, Handler>, u: Record<string, UpgradeHandler> = {}): void {
  seen = [];
  routes = r;
  upgrades = u;
}

class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

async function berth(argv: string[], opts: { stdin?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<{ code: number; out: string; err: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const stdin = Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]) as CliIo['stdin'];
  const code = await main(['-H', `unix://${socket}`, ...argv], { stdout, stderr, stdin, env: { BERTH_AUTOSTART: '0', HOME: dir, ...opts.env }, cwd: opts.cwd ?? dir });
  return { code, out: stdout.text, err: stderr.text };
}

const ID = '0123456789ab' + 'c'.repeat(52);

test('ps: GET /containers/json with filters, docker table', async () => {
  reset({
    'GET /containers/json': (_q, res) =>
      json(res, 200, [
        { Id: ID, Names: ['/web'], Image: 'busybox', ImageID: 'sha256:x', Command: 'sleep 100', Created: Math.floor(Date.now() / 1000) - 5, Ports: [], Labels: {}, State: 'running', Status: 'Up 5 seconds', HostConfig: { NetworkMode: 'none' }, NetworkSettings: { Networks: {} }, Mounts: [] },
      ]),
  });
  const r = await berth(['ps', '-a', '--filter', 'status=running']);
  assert.equal(r.code, 0, r.err);
  assert.equal(seen[0].query.get('all'), '1');
  assert.equal(seen[0].query.get('filters'), '{"status":["running"]}');
  const lines = r.out.split('\n');
  assert.match(lines[0], /^CONTAINER ID   IMAGE     COMMAND       CREATED         STATUS         PORTS     NAMES$/);
  assert.match(lines[1], /^0123456789ab   busybox   "sleep 100"   \d+ seconds ago   Up 5 seconds             web$/);
  const q = await berth(['ps', '-q']);
  assert.equal(q.out, '0123456789ab\n');
  const j = await berth(['container', 'ls', '--format', 'json']);
  assert.equal(JSON.parse(j.out).Names, 'web');
});

test('errors from the daemon: per object, exit 1; unreachable daemon', async () => {
  reset({
    'DELETE /containers/a': (_q, res) => res.writeHead(204).end(),
    'DELETE /containers/b': (_q, res) => json(res, 404, { message: 'No such container: b' }),
  });
  const r = await berth(['rm', '-f', 'a', 'b']);
  assert.equal(r.code, 1);
  assert.equal(r.out, 'a\n');
  assert.equal(r.err, 'Error response from daemon: No such container: b\n');
  assert.equal(seen[0].query.get('force'), '1');
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(['-H', `unix://${dir}/none.sock`, 'ps'], { stdout, stderr, stdin: Readable.from([]) as CliIo['stdin'], env: { BERTH_AUTOSTART: '0' }, cwd: dir });
  assert.equal(code, 1);
  assert.match(stderr.text, /Cannot connect to berthd at unix:\/\/.*none.sock/);
});

function runRoutes(opts: { exit: number; missingImage?: boolean; startError?: string }): { order: string[] } {
  const order: string[] = [];
  let created = false;
  let waitRes: http.ServerResponse | undefined;
  let attached: Duplex | undefined;
  const finish = (): void => {
    attached?.end(Buffer.concat([encodeFrame(1, Buffer.from('hello\n')), encodeFrame(2, Buffer.from('warn\n'))]));
    waitRes?.end(JSON.stringify({ StatusCode: opts.exit, Error: null }));
  };
  reset(
    {
      'POST /containers/create': (_q, res) => {
        order.push('create');
        if (opts.missingImage && !created) {
          created = true;
          json(res, 404, { message: 'No such image: busybox:latest' });
          return;
        }
        json(res, 201, { Id: ID, Warnings: [] });
      },
      'POST /images/create': (q, res) => {
        order.push(`pull ${q.query.get('fromImage')}:${q.query.get('tag')}`);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"status":"Pulling from library/busybox","id":"latest"}\n{"status":"Status: Downloaded newer image for busybox:latest"}\n');
      },
      [`POST /containers/${ID}/wait`]: (q, res) => {
        order.push(`wait ${q.query.get('condition')}`);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.flushHeaders();
        waitRes = res;
      },
      [`POST /containers/${ID}/start`]: (_q, res) => {
        order.push('start');
        if (opts.startError) {
          json(res, 400, { message: opts.startError });
          return;
        }
        res.writeHead(204).end();
        setTimeout(finish, 20);
      },
    },
    {
      [`POST /containers/${ID}/attach`]: (q, sock) => {
        order.push(`attach stdin=${q.query.get('stdin')}`);
        attached = sock;
      },
    },
  );
  return { order };
}

test('run: create, attach, wait, start, demuxed output, the container exit code', async () => {
  const { order } = runRoutes({ exit: 3 });
  const r = await berth(['run', '--rm', '--name', 'web', '-e', 'A=1', 'busybox', 'echo', 'hello']);
  assert.equal(r.code, 3, r.err);
  assert.equal(r.out, 'hello\n');
  assert.equal(r.err, 'warn\n');
  assert.deepEqual(order, ['create', 'attach stdin=0', 'wait removed', 'start']);
  const create = seen.find((s) => s.path === '/containers/create')!;
  assert.equal(create.query.get('name'), 'web');
  const body = JSON.parse(create.body);
  assert.deepEqual(body.Cmd, ['echo', 'hello']);
  assert.deepEqual(body.Env, ['A=1']);
  assert.equal(body.HostConfig.AutoRemove, true);
});

test('run: a missing image is pulled (progress on stderr) and the create retried', async () => {
  const { order } = runRoutes({ exit: 0, missingImage: true });
  const r = await berth(['run', 'busybox']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(order, ['create', 'pull busybox:latest', 'create', 'attach stdin=0', 'wait next-exit', 'start']);
  assert.match(r.err, /^Unable to find image 'busybox:latest' locally\nlatest: Pulling from library\/busybox\nStatus: Downloaded newer image for busybox:latest\nwarn\n$/);
  const pull = seen.find((s) => s.path === '/images/create')!;
  assert.ok(pull.headers['x-registry-auth']);
  const r2 = await (async () => {
    runRoutes({ exit: 0, missingImage: true });
    return berth(['run', '--pull', 'never', 'busybox']);
  })();
  assert.equal(r2.code, 125);
  assert.equal(r2.err, "berth: Error response from daemon: No such image: busybox:latest\n\nRun 'berth run --help' for more information\n");
});

test('run: start failures map to 127/126/125', async () => {
  runRoutes({ exit: 0, startError: 'exec: "nope": executable file not found in $PATH' });
  const r = await berth(['run', 'busybox', 'nope']);
  assert.equal(r.code, 127);
  assert.match(r.err, /^berth: Error response from daemon: exec: "nope": executable file not found/);
  runRoutes({ exit: 0, startError: 'exec /etc: permission denied' });
  assert.equal((await berth(['run', 'busybox', '/etc'])).code, 126);
  runRoutes({ exit: 0, startError: 'cgroup trouble' });
  assert.equal((await berth(['run', 'busybox'])).code, 125);
});

test('run -d prints the id; create prints the id', async () => {
  const { order } = runRoutes({ exit: 0 });
  const r = await berth(['run', '-d', 'busybox', 'sleep', '1']);
  assert.equal(r.out, `${ID}\n`);
  assert.deepEqual(order, ['create', 'start']);
  const c = await berth(['create', '-t', 'busybox']);
  assert.equal(c.out, `${ID}\n`);
  assert.equal(JSON.parse(seen.at(-1)!.body).Tty, true);
});

test('run -i: stdin is forwarded and closed', async () => {
  let got = '';
  const { order } = runRoutes({ exit: 0 });
  const attach = upgrades[`POST /containers/${ID}/attach`];
  upgrades[`POST /containers/${ID}/attach`] = (q, sock) => {
    sock.on('data', (c: Buffer) => (got += c.toString()));
    sock.on('end', () => {
      sock.end(encodeFrame(1, Buffer.from(got.toUpperCase())));
    });
    attach(q, new PassThrough());
  };
  const r = await berth(['run', '-i', 'busybox', 'cat'], { stdin: 'abc\n' });
  assert.equal(r.code, 0, r.err);
  assert.equal(got, 'abc\n');
  assert.equal(r.out, 'ABC\n');
  assert.deepEqual(order.slice(0, 2), ['create', 'attach stdin=1']);
  assert.equal(JSON.parse(seen[0].body).StdinOnce, true);
});

test('exec: create, hijacked start, exit code from inspect', async () => {
  reset(
    {
      'POST /containers/web/exec': (_q, res) => json(res, 201, { Id: 'e1' }),
      'GET /exec/e1/json': (_q, res) => json(res, 200, { ID: 'e1', Running: false, ExitCode: 7 }),
    },
    { 'POST /exec/e1/start': (_q, sock) => sock.end(encodeFrame(1, Buffer.from('out\n'))) },
  );
  const r = await berth(['exec', '-e', 'X=1', 'web', 'sh', '-c', 'exit 7']);
  assert.equal(r.code, 7, r.err);
  assert.equal(r.out, 'out\n');
  const create = JSON.parse(seen[0].body);
  assert.deepEqual(create.Cmd, ['sh', '-c', 'exit 7']);
  assert.deepEqual(create.Env, ['X=1']);
  assert.deepEqual(JSON.parse(seen[1].body), { Detach: false, Tty: false, ConsoleSize: null });
});

test('logs: inspect for the tty flag, then demux; options in the query', async () => {
  reset({
    'GET /containers/web/json': (_q, res) => json(res, 200, { Id: ID, Config: { Tty: false }, State: {} }),
    'GET /containers/web/logs': (_q, res) => {
      res.writeHead(200);
      res.end(Buffer.concat([encodeFrame(1, Buffer.from('a\n')), encodeFrame(2, Buffer.from('b\n'))]));
    },
  });
  const r = await berth(['logs', '-n', '5', '-t', '--since', '1700000000', 'web']);
  assert.equal(r.out, 'a\n');
  assert.equal(r.err, 'b\n');
  const q = seen[1].query;
  assert.deepEqual([q.get('tail'), q.get('timestamps'), q.get('since'), q.get('stdout'), q.get('stderr'), q.get('follow')], ['5', '1', '1700000000', '1', '1', null]);
});

test('inspect: falls through container → image; -f template; missing objects', async () => {
  reset({
    'GET /containers/busybox/json': (_q, res) => json(res, 404, { message: 'No such container: busybox' }),
    'GET /images/busybox/json': (_q, res) => json(res, 200, { Id: 'sha256:1', Config: { Env: ['PATH=/bin'] } }),
    'GET /containers/web/json': (_q, res) => json(res, 200, { Name: '/web', State: { Status: 'running' } }),
  });
  const r = await berth(['inspect', 'busybox']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), [{ Id: 'sha256:1', Config: { Env: ['PATH=/bin'] } }]);
  assert.match(r.out, /^\[\n {4}\{/);
  const f = await berth(['inspect', '-f', '{{.State.Status}} {{json .Name}}', 'web']);
  assert.equal(f.out, 'running "/web"\n');
  const m = await berth(['inspect', 'nothing']);
  assert.equal(m.code, 1);
  assert.equal(m.err, 'Error: No such object: nothing\n');
});

test('volume and image commands', async () => {
  reset({
    'POST /volumes/create': (q, res) => json(res, 201, { Name: JSON.parse(q.body).Name, Driver: 'local' }),
    'GET /volumes': (_q, res) => json(res, 200, { Volumes: [{ Name: 'data', Driver: 'local', Labels: {} }], Warnings: null }),
    'POST /images/busybox/tag': (_q, res) => res.writeHead(201).end(),
    'DELETE /images/busybox': (_q, res) => json(res, 200, [{ Untagged: 'busybox:latest' }, { Deleted: 'sha256:1' }]),
    'POST /containers/prune': (_q, res) => json(res, 200, { ContainersDeleted: ['x'], SpaceReclaimed: 2048 }),
  });
  assert.equal((await berth(['volume', 'create', '--label', 'a=b', 'data'])).out, 'data\n');
  assert.deepEqual(JSON.parse(seen[0].body), { Name: 'data', Driver: 'local', DriverOpts: {}, Labels: { a: 'b' } });
  assert.equal((await berth(['volume', 'ls'])).out, 'DRIVER    VOLUME NAME\nlocal     data\n');
  await berth(['tag', 'busybox', 'localhost:5000/bb:1']);
  assert.equal(seen.at(-1)!.query.toString(), 'repo=localhost%3A5000%2Fbb&tag=1');
  assert.equal((await berth(['rmi', 'busybox'])).out, 'Untagged: busybox:latest\nDeleted: sha256:1\n');
  const declined = await berth(['container', 'prune'], { stdin: 'n\n' });
  assert.equal(declined.code, 0);
  assert.ok(!seen.some((s) => s.path === '/containers/prune'));
  const p = await berth(['container', 'prune'], { stdin: 'y\n' });
  assert.equal(p.out.split('] ')[1], 'Deleted Containers:\nx\n\nTotal reclaimed space: 2.048kB\n');
});

test('pull prints progress lines and the reference; push sends auth', async () => {
  const cfg = path.join(dir, '.docker');
  mkdirSync(cfg, { recursive: true });
  writeFileSync(path.join(cfg, 'config.json'), JSON.stringify({ auths: { 'localhost:5000': { auth: Buffer.from('u:p').toString('base64') } } }));
  reset({
    'POST /images/create': (_q, res) => {
      res.writeHead(200);
      res.end('{"status":"Pulling from library/busybox","id":"latest"}\n{"status":"Downloading","id":"abc","progressDetail":{"current":1,"total":2}}\n{"status":"Pull complete","id":"abc"}\n');
    },
    'POST /images/localhost:5000/app/push': (_q, res) => {
      res.writeHead(200);
      res.end('{"status":"Pushed","id":"abc"}\n{"errorDetail":{"message":"denied"},"error":"denied"}\n');
    },
  });
  const r = await berth(['pull', 'busybox']);
  assert.equal(r.out, 'Using default tag: latest\nlatest: Pulling from library/busybox\nabc: Pull complete\ndocker.io/library/busybox:latest\n');
  const p = await berth(['push', 'localhost:5000/app:1']);
  assert.equal(p.code, 1);
  assert.equal(p.err, 'denied\n');
  const auth = JSON.parse(Buffer.from(String(seen.at(-1)!.headers['x-registry-auth']), 'base64url').toString());
  assert.deepEqual(auth, { username: 'u', password: 'p', serveraddress: 'localhost:5000' });
  assert.equal(seen.at(-1)!.query.get('tag'), '1');
});

test('cp: container → host extracts under the destination; host → container packs a tar', async () => {
  reset({
    'GET /containers/web/archive': (_q, res) => {
      const stat = Buffer.from(JSON.stringify({ name: 'etc', size: 4096, mode: 2 ** 31 + 0o755, mtime: '', linkTarget: '' })).toString('base64');
      res.writeHead(200, { 'Content-Type': 'application/x-tar', 'X-Docker-Container-Path-Stat': stat });
      const w = new TarWriter();
      w.pipe(res);
      (async () => {
        await w.add({ name: 'etc', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 });
        await w.add({ name: 'etc/hostname', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 4, mtime: 0 }, 'box\n');
        await w.add({ name: 'etc/link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: 'hostname' });
        await w.finish();
      })();
    },
    'HEAD /containers/web/archive': (q, res) => {
      if (q.query.get('path') === '/tmp') {
        res.writeHead(200, { 'X-Docker-Container-Path-Stat': Buffer.from(JSON.stringify({ name: 'tmp', size: 0, mode: 2 ** 31 + 0o1777, mtime: '', linkTarget: '' })).toString('base64') });
        res.end();
      } else json(res, 404, { message: 'not found' });
    },
    'PUT /containers/web/archive': (_q, res) => res.writeHead(200).end(),
  });
  const dest = path.join(dir, 'out');
  const r = await berth(['cp', 'web:/etc', dest]);
  assert.equal(r.code, 0, r.err);
  assert.equal(readFileSync(path.join(dest, 'hostname'), 'utf8'), 'box\n');
  const r2 = await berth(['cp', 'web:/etc', dest]);
  assert.equal(r2.code, 0, r2.err);
  assert.ok(existsSync(path.join(dest, 'etc', 'hostname')), 'into an existing directory: under its own name');

  const src = path.join(dir, 'src');
  mkdirSync(src);
  writeFileSync(path.join(src, 'a.txt'), 'A');
  const r3 = await berth(['cp', src, 'web:/tmp']);
  assert.equal(r3.code, 0, r3.err);
  const put = seen.find((s) => s.method === 'PUT')!;
  assert.equal(put.query.get('path'), '/tmp');
  const names: string[] = [];
  for await (const { entry, body } of readTar(Readable.from([Buffer.from(put.body, 'latin1')]))) {
    names.push(entry.name);
    body.resume();
  }
  assert.deepEqual(names, ['src/', 'src/a.txt']);
  const r4 = await berth(['cp', path.join(src, 'a.txt'), 'web:/tmp/renamed.txt']);
  assert.equal(r4.code, 0, r4.err);
  assert.equal(seen.filter((s) => s.method === 'PUT').at(-1)!.query.get('path'), '/tmp');
});

test('usage errors: exit 125 with the usage line', async () => {
  const r = await berth(['run', '--bogus', 'img']);
  assert.equal(r.code, 125);
  assert.equal(r.err, "unknown flag: --bogus\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n");
  const h = await berth(['ps', '--help']);
  assert.match(h.out, /^Usage:  berth ps \[OPTIONS\]\n\nList containers\n\nOptions:\n/);
  const g = await berth(['volume', 'frob']);
  assert.equal(g.code, 1);
});
