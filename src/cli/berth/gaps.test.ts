// berth diff, commit, login and logout against a fake API on a unix socket: the requests they
// send, what they print, and the docker config file login and logout keep.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { Client } from './client.js';
import type { Command, Context } from './context.js';
import { Flags, parseCommandLine } from './flags.js';
import { commands as containerCommands } from './containers.js';
import { commands as imageCommands, loginKey } from './images.js';

let dir: string;
let server: http.Server;
const seen: { method: string; url: string; body: string }[] = [];

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-gaps-cli-'));
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      const u = new URL(req.url ?? '/', 'http://x');
      const json = (status: number, v: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      if (u.pathname === '/containers/web/changes') return json(200, [{ Path: '/tmp', Kind: 0 }, { Path: '/tmp/x', Kind: 1 }, { Path: '/etc/motd', Kind: 2 }]);
      if (u.pathname === '/commit') return json(201, { Id: 'sha256:' + 'ab'.repeat(32) });
      if (u.pathname === '/auth') {
        const auth = JSON.parse(body) as { password: string };
        return auth.password === 'right' ? json(200, { Status: 'Login Succeeded', IdentityToken: '' }) : json(401, { message: 'login to example.test failed: unauthorized' });
      }
      json(404, { message: 'no route' });
    });
  });
  await new Promise<void>((r) => server.listen(path.join(dir, 'api.sock'), r));
});

after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

async function run(command: Command, argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const stdout = new PassThrough();
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  const stderr = new PassThrough();
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const client = new Client({ socketPath: path.join(dir, 'api.sock') });
  const ctx: Context = { client: () => client, stdout, stderr, stdin: Readable.from([Buffer.from(stdin)]), env: { DOCKER_CONFIG: path.join(dir, 'docker') }, cwd: dir, prog: 'berth' };
  try {
    const parsed = parseCommandLine(command.spec, argv);
    return { code: await command.run(ctx, new Flags(parsed), parsed.args), out, err };
  } finally {
    client.close();
  }
}

test('berth diff prints C/A/D lines', async () => {
  const r = await run(containerCommands.diff!, ['web']);
  assert.equal(r.out, 'C /tmp\nA /tmp/x\nD /etc/motd\n');
});

test('berth commit sends repo, tag, changes and pause; prints the image ID', async () => {
  const r = await run(containerCommands.commit!, ['-a', 'me', '-m', 'msg', '-c', 'ENV A=1', '--change', 'CMD ["sh"]', '--pause=false', 'web', 'localhost:5000/app:v1']);
  assert.equal(r.out, `sha256:${'ab'.repeat(32)}\n`);
  const q = new URL(seen.at(-1)!.url, 'http://x').searchParams;
  assert.deepEqual(
    [q.get('container'), q.get('repo'), q.get('tag'), q.get('author'), q.get('comment'), q.getAll('changes'), q.get('pause')],
    ['web', 'localhost:5000/app', 'v1', 'me', 'msg', ['ENV A=1', 'CMD ["sh"]'], '0'],
  );
  await run(containerCommands.commit!, ['web', 'localhost:5000/app']);
  const q2 = new URL(seen.at(-1)!.url, 'http://x').searchParams;
  assert.deepEqual([q2.get('repo'), q2.get('tag'), q2.get('pause')], ['localhost:5000/app', null, '1']);
});

test('berth login stores the credentials as docker does; logout removes them', async () => {
  const file = path.join(dir, 'docker', 'config.json');
  const r = await run(imageCommands.login!, ['-u', 'alice', '--password-stdin', 'http://127.0.0.1:5000/'], 'right\n');
  assert.equal(r.code, 0);
  assert.equal(r.out, 'Login Succeeded\n');
  assert.deepEqual(JSON.parse(seen.at(-1)!.body), { username: 'alice', password: 'right', serveraddress: '127.0.0.1:5000' });
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as { auths: Record<string, { auth: string }> };
  assert.equal(Buffer.from(cfg.auths['127.0.0.1:5000']!.auth, 'base64').toString(), 'alice:right');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  // Other settings in the file survive a login.
  writeFileSync(file, JSON.stringify({ ...cfg, detachKeys: 'ctrl-a,x' }));
  await run(imageCommands.login!, ['-u', 'bob', '-p', 'right']);
  const both = JSON.parse(readFileSync(file, 'utf8')) as { auths: Record<string, unknown>; detachKeys: string };
  assert.deepEqual(Object.keys(both.auths).sort(), ['127.0.0.1:5000', 'https://index.docker.io/v1/']);
  assert.equal(both.detachKeys, 'ctrl-a,x');
  await assert.rejects(run(imageCommands.login!, ['-u', 'alice', '-p', 'wrong', '127.0.0.1:5000']), /unauthorized/);
  assert.equal((await run(imageCommands.logout!, ['127.0.0.1:5000'])).out, 'Removing login credentials for 127.0.0.1:5000\n');
  assert.equal((await run(imageCommands.logout!, ['127.0.0.1:5000'])).out, 'Not logged in to 127.0.0.1:5000\n');
  assert.deepEqual(Object.keys((JSON.parse(readFileSync(file, 'utf8')) as { auths: object }).auths), ['https://index.docker.io/v1/']);
  await assert.rejects(run(imageCommands.login!, ['-u', 'alice']), /username and password are required/);
});

test('loginKey: the host, or Docker Hub’s key', () => {
  assert.equal(loginKey(undefined), 'https://index.docker.io/v1/');
  assert.equal(loginKey('docker.io'), 'https://index.docker.io/v1/');
  assert.equal(loginKey('https://index.docker.io/v1/'), 'https://index.docker.io/v1/');
  assert.equal(loginKey('https://ghcr.io'), 'ghcr.io');
  assert.equal(loginKey('localhost:5000'), 'localhost:5000');
});
