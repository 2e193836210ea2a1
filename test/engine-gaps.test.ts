// berthd's answers to what the docker CLI asks beyond the basics: login against a local
// registry, diff, commit, detach keys on attach and exec, a tty's stdin across attaches,
// docker cp through volumes, binds and tmpfs, and the images reference filter. Root; only
// this test's containers, volumes and a registry on 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { startBerthd, berthdSkipReason, dockerCli, importBusybox, type Berthd } from './helpers/berthd.js';
import { registryUnavailable, startRegistry } from './helpers/registry.js';
import { show, sleep, waitFor } from './helpers/runtime.js';

const skip = berthdSkipReason() || (dockerCli() ? false : 'no docker CLI installed');
const IMAGE = 'berth-test/busybox:gaps';
// Nothing here needs a network: the tests do not depend on the bridge driver.
const NO_NETWORK = { NetworkMode: 'none' };
let d: Berthd;

before(async () => {
  if (skip) return;
  d = await startBerthd({ label: 'gaps' });
  await importBusybox(d, IMAGE);
});

after(async () => {
  if (skip) return;
  assert.deepEqual(await d.stop(), []);
});

async function ok(args: string[], opts?: { input?: string }): Promise<string> {
  const r = await d.docker(args, opts);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

async function status(name: string): Promise<string> {
  return (await ok(['inspect', '-f', '{{.State.Status}}', name])).trim();
}

/** A raw hijacked POST on berthd's socket: the status line, then the stream both ways. */
interface Hijacked {
  status: number;
  socket: Socket;
  /** Everything received after the response head. */
  received(): string;
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  /** Resolves when berthd has ended the connection. */
  ended: Promise<void>;
}

function hijack(path: string, body?: unknown): Promise<Hijacked> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: d.socket });
    const payload = body === undefined ? '' : JSON.stringify(body);
    let head = Buffer.alloc(0);
    let rest = '';
    let settled = false;
    const ended = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', (err) => {
      if (!settled) reject(err);
    });
    socket.on('data', (chunk: Buffer) => {
      if (settled) {
        rest += chunk.toString('latin1');
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      settled = true;
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head.toString('latin1'))?.[1] ?? 0);
      rest = head.subarray(end + 4).toString('latin1');
      resolve({
        status,
        socket,
        received: () => rest,
        ended,
        waitFor: (text, timeoutMs = 10_000) => waitFor(`"${text}" on the attach stream (got ${JSON.stringify(rest.slice(-300))})`, () => (rest.includes(text) ? true : undefined), timeoutMs).then(() => undefined),
      });
    });
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
    );
  });
}

test('images: a reference filter shows only the matching tags', { skip }, async () => {
  await ok(['tag', IMAGE, 'gaps-ref:1.0']);
  await ok(['tag', IMAGE, 'gaps-ref:1.1']);
  await ok(['tag', IMAGE, 'gaps-ref:2.0']);
  const lines = (args: string[]) => ok(['images', '--format', '{{.Repository}}:{{.Tag}}', ...args]).then((o) => o.trim().split('\n').filter(Boolean).sort());
  assert.deepEqual(await lines(['--filter', 'reference=gaps-ref:1*']), ['gaps-ref:1.0', 'gaps-ref:1.1']);
  assert.deepEqual(await lines(['gaps-ref']), ['gaps-ref:1.0', 'gaps-ref:1.1', 'gaps-ref:2.0']);
  for (const t of ['1.0', '1.1', '2.0']) await ok(['rmi', `gaps-ref:${t}`]);
});

test('docker login against a registry with htpasswd: right and wrong password, unreachable registry', { skip: skip || registryUnavailable() || false }, async () => {
  const reg = await startRegistry({ auth: 'htpasswd', users: { alice: 's3cret' } });
  try {
    const good = await d.docker(['login', reg.host, '-u', 'alice', '--password-stdin'], { input: 's3cret\n' });
    assert.equal(good.code, 0, `${show(good)}\nregistry: ${reg.log().slice(-1500)}`);
    assert.match(good.stdout, /Login Succeeded/);
    const cfg = JSON.parse(readFileSync(join(d.work, 'docker-config', 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.equal(Buffer.from(cfg.auths[reg.host]!.auth, 'base64').toString(), 'alice:s3cret');

    const bad = await d.docker(['login', reg.host, '-u', 'alice', '--password-stdin'], { input: 'nope\n' });
    assert.notEqual(bad.code, 0, show(bad));
    assert.match(bad.stderr, /unauthorized|401/i);
    const raw = await d.api('POST', '/auth', { username: 'alice', password: 'nope', serveraddress: reg.host });
    assert.equal(raw.status, 401, raw.body.toString());
    assert.match(raw.json<{ message: string }>().message, new RegExp(`login to ${reg.host.replace(/\./g, '\\.')} failed`));
    const rawGood = await d.api('POST', '/auth', { username: 'alice', password: 's3cret', serveraddress: `http://${reg.host}/v2/` });
    assert.equal(rawGood.status, 200);
    assert.deepEqual(rawGood.json(), { Status: 'Login Succeeded', IdentityToken: '' });
  } finally {
    await reg.stop();
  }
  // Nothing listens on port 1 of the loopback: the error names the registry.
  const gone = await d.api('POST', '/auth', { username: 'a', password: 'b', serveraddress: '127.0.0.1:1' });
  assert.ok(gone.status >= 500, `${gone.status} ${gone.body.toString()}`);
  assert.match(gone.json<{ message: string }>().message, /127\.0\.0\.1:1/);
  assert.equal((await d.api('POST', '/auth', { username: 'a' , password: 'b', serveraddress: 'bad address' })).status, 400);
});

test('docker diff and docker commit: changes in Docker’s shape, the committed image runs with them', { skip }, async () => {
  await ok([
    'run',
    '--network',
    'none',
    '--name',
    'gaps-diff',
    IMAGE,
    'sh',
    '-c',
    'echo hi > /tmp/new.txt && echo extra >> /etc/passwd && rm /etc/group && mkdir -p /var/a/b && rm -rf /home/user && mkdir /home/user && touch /home/user/f',
  ]);
  const diff = (await ok(['diff', 'gaps-diff'])).trim().split('\n');
  assert.deepEqual(diff, [
    'C /etc',
    'D /etc/group',
    'C /etc/passwd',
    'C /home',
    'C /home/user',
    'A /home/user/f',
    'C /tmp',
    'A /tmp/new.txt',
    'C /var',
    'A /var/a',
    'A /var/a/b',
  ]);
  const api = await d.api('GET', '/containers/gaps-diff/changes');
  assert.deepEqual(api.json<{ Path: string; Kind: number }[]>().slice(0, 2), [
    { Path: '/etc', Kind: 0 },
    { Path: '/etc/group', Kind: 2 },
  ]);

  const id = (await ok(['commit', '-a', 'tester', '-m', 'gaps commit', '-c', 'ENV FOO=bar', '-c', 'CMD ["cat", "/tmp/new.txt"]', 'gaps-diff', 'gaps/committed:1'])).trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  assert.equal((await ok(['run', '--rm', '--network', 'none', 'gaps/committed:1'])).trim(), 'hi');
  const seen = await ok(['run', '--rm', '--network', 'none', 'gaps/committed:1', 'sh', '-c', 'test -e /etc/group || echo group-gone; ls /home/user; tail -n1 /etc/passwd; echo $FOO']);
  assert.deepEqual(seen.trim().split('\n'), ['group-gone', 'f', 'extra', 'bar']);
  const inspect = JSON.parse(await ok(['image', 'inspect', 'gaps/committed:1'])) as { Id: string; Author: string; Comment: string; Config: { Cmd: string[]; Env: string[] }; RootFS: { Layers: string[] } }[];
  assert.equal(inspect[0]!.Id, id);
  assert.equal(inspect[0]!.Author, 'tester');
  assert.equal(inspect[0]!.Comment, 'gaps commit');
  assert.deepEqual(inspect[0]!.Config.Cmd, ['cat', '/tmp/new.txt']);
  assert.ok(inspect[0]!.Config.Env.includes('FOO=bar'));
  assert.equal(inspect[0]!.RootFS.Layers.length, 2);
  const history = (await ok(['history', '--format', '{{.Comment}}', 'gaps/committed:1'])).trim().split('\n');
  assert.equal(history[0], 'gaps commit');

  // A running container is paused while its layer is read, then runs on.
  await ok(['run', '-d', '--network', 'none', '--name', 'gaps-live', IMAGE, 'sh', '-c', 'echo live > /tmp/live && sleep 1000']);
  await waitFor('the live container wrote its file', async () => ((await d.docker(['exec', 'gaps-live', 'cat', '/tmp/live'])).stdout.includes('live') ? true : undefined));
  const liveId = (await ok(['commit', 'gaps-live'])).trim();
  assert.match(liveId, /^sha256:/);
  assert.equal(await status('gaps-live'), 'running');
  assert.equal((await ok(['run', '--rm', '--network', 'none', liveId, 'cat', '/tmp/live'])).trim(), 'live');
  // Unchanged: an empty layer, the parent's layers only.
  await ok(['create', '--network', 'none', '--name', 'gaps-untouched', IMAGE, 'true']);
  const same = (await ok(['commit', 'gaps-untouched', 'gaps/untouched'])).trim();
  const layers = JSON.parse(await ok(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', same])) as string[];
  assert.equal(layers.length, 1);
  assert.equal((await d.api('POST', '/commit?container=nosuch')).status, 404);
  assert.equal((await d.api('POST', '/commit?container=gaps-live&changes=BOGUS%201')).status, 400);
  await ok(['rm', '-f', 'gaps-diff', 'gaps-live', 'gaps-untouched']);
  await ok(['rmi', 'gaps/committed:1', 'gaps/untouched', liveId]);
});

test('detach keys: ctrl-p ctrl-q ends a tty attach and leaves the container running; the tty keeps its stdin', { skip }, async () => {
  const created = await d.api('POST', '/containers/create?name=gaps-tty', { Image: IMAGE, Cmd: ['sh'], Tty: true, OpenStdin: true, StdinOnce: true, AttachStdin: true, HostConfig: NO_NETWORK });
  assert.equal(created.status, 201, created.body.toString());
  assert.equal((await d.api('POST', '/containers/gaps-tty/start')).status, 204);

  const a = await hijack('/containers/gaps-tty/attach?stream=1&stdin=1&stdout=1&stderr=1');
  assert.equal(a.status, 101);
  a.socket.write('echo first-$((40+2))\n');
  await a.waitFor('first-42');
  // ctrl-p alone is held back, then let through with what follows when it is not ctrl-q.
  a.socket.write('\x10');
  await sleep(100);
  a.socket.write('\x11');
  await a.ended;
  assert.equal(await status('gaps-tty'), 'running');

  // StdinOnce with a tty: the first client going away did not close the shell's stdin.
  const b = await hijack('/containers/gaps-tty/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-a,x');
  assert.equal(b.status, 101);
  b.socket.write('echo second-$((40+3))\n');
  await b.waitFor('second-43');
  b.socket.write('\x01x');
  await b.ended;
  assert.equal(await status('gaps-tty'), 'running');

  // A client that simply disconnects leaves it running and typeable too.
  const c = await hijack('/containers/gaps-tty/attach?stream=1&stdin=1&stdout=1');
  c.socket.destroy();
  await sleep(200);
  const e = await hijack('/containers/gaps-tty/attach?stream=1&stdin=1&stdout=1');
  e.socket.write('echo third-$((40+4))\n');
  await e.waitFor('third-44');
  e.socket.destroy();

  // The docker CLI leaves the detach keys to the daemon: `docker attach` in a terminal, ctrl-p ctrl-q.
  // The keys go only once the shell answered through the CLI: before the CLI puts the terminal
  // in raw mode, its line discipline would take ctrl-q as flow control.
  const env = { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: join(d.work, 'docker-config') };
  const cli = spawn('script', ['-qc', `${dockerCli()!} attach gaps-tty`, '/dev/null'], { cwd: d.work, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let cliOut = '';
  cli.stdout.on('data', (c: Buffer) => (cliOut += c.toString()));
  const cliExit = new Promise<number | null>((r) => cli.once('exit', (code) => r(code)));
  try {
    let polls = 0;
    await waitFor('the shell to answer through docker attach', () => {
      if (polls++ % 20 === 0) cli.stdin.write('echo via-cli-$((40+6))\n');
      return cliOut.includes('via-cli-46') ? true : undefined;
    }, 15_000);
    cli.stdin.write('\x10\x11');
    assert.equal(await Promise.race([cliExit, sleep(15_000).then(() => 'still attached')]), 0, cliOut);
  } finally {
    cli.kill('SIGKILL');
  }
  assert.equal(await status('gaps-tty'), 'running');

  const badAttach = await hijack('/containers/gaps-tty/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-1');
  assert.equal(badAttach.status, 400, badAttach.received());
  badAttach.socket.destroy();

  // exec: the sequence from DetachKeys ends the session; the exec process runs on.
  const exec = await d.api('POST', '/containers/gaps-tty/exec', { Cmd: ['sh'], Tty: true, AttachStdin: true, AttachStdout: true, DetachKeys: 'ctrl-x' });
  assert.equal(exec.status, 201, exec.body.toString());
  const execId = exec.json<{ Id: string }>().Id;
  const x = await hijack(`/exec/${execId}/start`, { Detach: false, Tty: true });
  assert.equal(x.status, 101);
  x.socket.write('echo in-exec-$((40+5))\n');
  await x.waitFor('in-exec-45');
  x.socket.write('\x18');
  await x.ended;
  const execInspect = (await d.api('GET', `/exec/${execId}/json`)).json<{ Running: boolean }>();
  assert.equal(execInspect.Running, true);
  assert.equal((await d.api('POST', '/containers/gaps-tty/exec', { Cmd: ['true'], DetachKeys: 'ctrl-' })).status, 400);
  await ok(['rm', '-f', 'gaps-tty']);
});

test('StdinOnce without a tty: the end of the client’s stdin is the end of the container’s', { skip }, async () => {
  const created = await d.api('POST', '/containers/create?name=gaps-cat', { Image: IMAGE, Cmd: ['cat'], OpenStdin: true, StdinOnce: true, AttachStdin: true, HostConfig: NO_NETWORK });
  assert.equal(created.status, 201);
  assert.equal((await d.api('POST', '/containers/gaps-cat/start')).status, 204);
  const a = await hijack('/containers/gaps-cat/attach?stream=1&stdin=1&stdout=1');
  // Without a tty the bytes of ctrl-p ctrl-q are data, as in Docker.
  a.socket.write('\x10\x11data\n');
  await a.waitFor('data');
  assert.ok(a.received().includes('\x10\x11data'));
  a.socket.end();
  await a.ended;
  await waitFor('cat to exit', async () => ((await status('gaps-cat')) === 'exited' ? true : undefined));
  await ok(['rm', 'gaps-cat']);
});

test('docker cp into and out of a named volume, a bind mount and a tmpfs, stopped and running', { skip }, async () => {
  const hostDir = join(d.work, 'gaps-bind');
  mkdirSync(hostDir, { recursive: true });
  const src = join(d.work, 'gaps-src.txt');
  writeFileSync(src, 'payload\n');
  await ok(['volume', 'create', 'gaps-vol']);
  const volDir = (await ok(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'gaps-vol'])).trim();
  await ok(['create', '--network', 'none', '--name', 'gaps-cp', '-v', 'gaps-vol:/data', '-v', `${hostDir}:/bind`, '--tmpfs', '/scratch', '-v', `${hostDir}:/robind:ro`, IMAGE, 'sleep', '1000']);

  // Stopped: straight to the volume's and the bind's sources.
  await ok(['cp', src, 'gaps-cp:/data/in-stopped.txt']);
  await ok(['cp', src, 'gaps-cp:/bind/in-stopped.txt']);
  assert.equal(readFileSync(join(volDir, 'in-stopped.txt'), 'utf8'), 'payload\n');
  assert.equal(readFileSync(join(hostDir, 'in-stopped.txt'), 'utf8'), 'payload\n');
  await ok(['cp', 'gaps-cp:/data/in-stopped.txt', join(d.work, 'out-vol-stopped.txt')]);
  assert.equal(readFileSync(join(d.work, 'out-vol-stopped.txt'), 'utf8'), 'payload\n');
  const ro = await d.docker(['cp', src, 'gaps-cp:/robind/x.txt']);
  assert.notEqual(ro.code, 0);
  assert.match(ro.stderr, /read-only/);
  assert.ok(!existsSync(join(hostDir, 'x.txt')));

  await ok(['start', 'gaps-cp']);
  await ok(['cp', src, 'gaps-cp:/data/in-running.txt']);
  await ok(['cp', src, 'gaps-cp:/bind/in-running.txt']);
  await ok(['cp', src, 'gaps-cp:/scratch/in-tmpfs.txt']);
  assert.equal(readFileSync(join(volDir, 'in-running.txt'), 'utf8'), 'payload\n');
  assert.equal(readFileSync(join(hostDir, 'in-running.txt'), 'utf8'), 'payload\n');
  assert.equal(await ok(['exec', 'gaps-cp', 'cat', '/scratch/in-tmpfs.txt', '/data/in-stopped.txt', '/bind/in-running.txt']), 'payload\n'.repeat(3));
  await ok(['exec', 'gaps-cp', 'sh', '-c', 'echo made-inside > /scratch/made.txt && echo vol-inside > /data/made.txt && ln -s /etc /data/etc-link']);
  await ok(['cp', 'gaps-cp:/scratch/made.txt', join(d.work, 'out-tmpfs.txt')]);
  assert.equal(readFileSync(join(d.work, 'out-tmpfs.txt'), 'utf8'), 'made-inside\n');
  await ok(['cp', 'gaps-cp:/data/.', join(d.work, 'out-vol-dir')]);
  assert.equal(readFileSync(join(d.work, 'out-vol-dir', 'made.txt'), 'utf8'), 'vol-inside\n');
  // A symlink in the volume to /etc means the container's /etc, never the host's.
  await ok(['cp', 'gaps-cp:/data/etc-link/passwd', join(d.work, 'out-passwd-running')]);
  assert.match(readFileSync(join(d.work, 'out-passwd-running'), 'utf8'), /^user:x:1000:1000/m);
  await ok(['stop', '-t', '0', 'gaps-cp']);
  await ok(['cp', 'gaps-cp:/data/etc-link/passwd', join(d.work, 'out-passwd-stopped')]);
  assert.equal(readFileSync(join(d.work, 'out-passwd-stopped'), 'utf8'), readFileSync(join(d.work, 'out-passwd-running'), 'utf8'));
  await ok(['cp', 'gaps-cp:/data/made.txt', join(d.work, 'out-vol-stopped2.txt')]);
  assert.equal(readFileSync(join(d.work, 'out-vol-stopped2.txt'), 'utf8'), 'vol-inside\n');
  await ok(['rm', '-f', 'gaps-cp']);
  await ok(['volume', 'rm', 'gaps-vol']);
});
