import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BerthError } from '../../errors.js';
import { FakeEngine, FAKE_CONTAINER_ID } from './fake-engine.js';
import { request } from './http-client.js';
import { startDockerApi, type DockerApi } from './index.js';

describe('docker API server', () => {
  let dir: string;
  let sock: string;
  let engine: FakeEngine;
  let api: DockerApi;
  const logged: { msg: string; fields?: object }[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-api-'));
    sock = join(dir, 'berth.sock');
    engine = new FakeEngine();
    api = await startDockerApi({ engine, socketPath: sock, log: (msg, fields) => logged.push({ msg, fields }) });
  });
  after(async () => {
    try {
      await api.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('creates the socket with mode 0660 and removes it on close', async () => {
    const st = await stat(sock);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    const other = join(dir, 'other.sock');
    const api2 = await startDockerApi({ engine, socketPath: other, mode: 0o600 });
    assert.equal((await stat(other)).mode & 0o777, 0o600);
    await api2.close();
    await assert.rejects(stat(other), { code: 'ENOENT' });
  });

  it('refuses to start while another server answers on the socket', async () => {
    await assert.rejects(startDockerApi({ engine, socketPath: sock }), (err: unknown) => err instanceof BerthError && err.code === 'FailedPrecondition' && /already listening/.test(err.message));
    // The running server is untouched.
    assert.equal((await request(sock, 'GET', '/_ping')).status, 200);
  });

  it('replaces a stale socket file nobody answers on, but not a regular file', async () => {
    const stale = join(dir, 'stale.sock');
    // The leftover of a crashed daemon: a socket file whose listener died without cleaning up.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.ok((await stat(stale)).isSocket());
    const api2 = await startDockerApi({ engine, socketPath: stale });
    assert.equal((await request(stale, 'GET', '/_ping')).status, 200);
    await api2.close();

    const plain = join(dir, 'plain.sock');
    await writeFile(plain, 'x');
    await assert.rejects(startDockerApi({ engine, socketPath: plain }), /is not a socket/);
  });

  it('answers GET and HEAD /_ping with the negotiation headers', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await request(sock, method, '/_ping');
      assert.equal(res.status, 200);
      assert.equal(res.headers['api-version'], '1.47');
      assert.equal(res.headers['ostype'], 'linux');
      assert.equal(res.headers['docker-experimental'], 'false');
      assert.equal(res.headers['builder-version'], '1');
      assert.equal(res.headers['cache-control'], 'no-cache, no-store, must-revalidate');
      assert.equal(res.headers['pragma'], 'no-cache');
      assert.equal(res.body.toString(), method === 'GET' ? 'OK' : '');
    }
  });

  it('serves versioned and unversioned paths and refuses versions out of range', async () => {
    assert.equal((await request(sock, 'GET', '/v1.41/_ping')).status, 200);
    assert.equal((await request(sock, 'GET', '/v1.47/containers/json')).status, 200);
    assert.equal((await request(sock, 'GET', '/containers/json')).status, 200);
    const tooNew = await request(sock, 'GET', '/v1.50/containers/json');
    assert.equal(tooNew.status, 400);
    assert.equal(tooNew.json<{ message: string }>().message, 'client version 1.50 is too new. Maximum supported API version is 1.47');
    const tooOld = await request(sock, 'GET', '/v1.24/version');
    assert.equal(tooOld.status, 400);
    assert.match(tooOld.json<{ message: string }>().message, /client version 1\.24 is too old. Minimum supported API version is 1\.41/);
  });

  it('reports its own API range in /version', async () => {
    const v = (await request(sock, 'GET', '/v1.41/version')).json<{ ApiVersion: string; MinAPIVersion: string; Version: string }>();
    assert.equal(v.ApiVersion, '1.47');
    assert.equal(v.MinAPIVersion, '1.41');
    assert.equal(v.Version, '0.1.0');
  });

  it('passes list parameters and filters in both JSON shapes', async () => {
    engine.calls.length = 0;
    await request(sock, 'GET', '/v1.47/containers/json?all=1&limit=3&size=true&filters=' + encodeURIComponent('{"label":{"a=b":true},"status":["running"]}'));
    assert.deepEqual(engine.callsTo('listContainers')[0]![0], { all: true, limit: 3, size: true, filters: { label: ['a=b'], status: ['running'] } });
    const bad = await request(sock, 'GET', '/containers/json?filters=notjson');
    assert.equal(bad.status, 400);
    assert.match(bad.json<{ message: string }>().message, /invalid filters/);
    const badInt = await request(sock, 'GET', '/containers/json?limit=x');
    assert.equal(badInt.status, 400);
    assert.match(badInt.json<{ message: string }>().message, /"limit"/);
  });

  it('routes image names with slashes, colons and digests', async () => {
    engine.calls.length = 0;
    const res = await request(sock, 'GET', '/v1.41/images/localhost:5000/a/b:1/json');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json<{ RepoTags: string[] }>().RepoTags, ['busybox:latest', 'localhost:5000/a/b:1']);
    await request(sock, 'GET', '/images/busybox/history');
    await request(sock, 'POST', '/images/localhost:5000/a/b:1/tag?repo=localhost:5000/c&tag=2');
    await request(sock, 'DELETE', '/images/localhost:5000/a/b:1?force=1');
    const digest = `busybox@sha256:${'0'.repeat(64)}`;
    await request(sock, 'GET', `/images/${digest}/json`);
    assert.deepEqual(engine.callsTo('inspectImage'), [['localhost:5000/a/b:1'], [digest]]);
    assert.deepEqual(engine.callsTo('imageHistory'), [['busybox']]);
    assert.deepEqual(engine.callsTo('tagImage'), [['localhost:5000/a/b:1', 'localhost:5000/c', '2']]);
    assert.deepEqual(engine.callsTo('removeImage'), [['localhost:5000/a/b:1', { force: true, noprune: false }]]);
    const tagged = await request(sock, 'POST', '/images/busybox/tag?repo=x');
    assert.equal(tagged.status, 201);
    const listed = await request(sock, 'GET', '/images/json?all=1');
    assert.equal(listed.json<unknown[]>().length, 1);
  });

  it('maps error codes to statuses with a JSON message', async () => {
    const missing = await request(sock, 'GET', '/containers/nosuch/json');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json(), { message: 'No such container: nosuch' });
    assert.equal(missing.headers['content-type'], 'application/json');
    const conflict = await request(sock, 'POST', '/containers/create?name=web', { headers: { 'Content-Type': 'application/json' }, body: '{"Image":"busybox"}' });
    assert.equal(conflict.status, 409);
    const statuses: [BerthError['code'], number][] = [['InvalidArgument', 400], ['FailedPrecondition', 409], ['AlreadyExists', 409], ['Unavailable', 503], ['Internal', 500]];
    const saved = engine.pauseContainer;
    for (const [code, status] of statuses) {
      engine.pauseContainer = async () => {
        throw new BerthError(code, `failed with ${code}`, { hint: 'try again' });
      };
      const res = await request(sock, 'POST', '/containers/web/pause');
      assert.equal(res.status, status, code);
      assert.equal(res.json<{ message: string }>().message, `failed with ${code} (try again)`);
    }
    engine.pauseContainer = async () => {
      throw new Error('a bug');
    };
    const bug = await request(sock, 'POST', '/containers/web/pause');
    assert.equal(bug.status, 500);
    assert.equal(bug.json<{ message: string }>().message, 'a bug');
    assert.ok(logged.some((l) => l.msg === 'internal error'));
    engine.pauseContainer = saved;
  });

  it('refuses bad JSON and wrong field types by name', async () => {
    const bad = await request(sock, 'POST', '/containers/create', { body: '{"Image": ' });
    assert.equal(bad.status, 400);
    assert.match(bad.json<{ message: string }>().message, /invalid JSON in request body/);
    const wrong = await request(sock, 'POST', '/containers/create', { body: JSON.stringify({ Image: 'busybox', HostConfig: { Memory: '1g' } }) });
    assert.equal(wrong.status, 400);
    assert.match(wrong.json<{ message: string }>().message, /HostConfig\.Memory must be an integer/);
    const wrongEnv = await request(sock, 'POST', '/containers/create', { body: JSON.stringify({ Image: 'busybox', Env: ['A=1', 2] }) });
    assert.match(wrongEnv.json<{ message: string }>().message, /Env\[1\] must be a string/);
    const port = await request(sock, 'POST', '/containers/create', { body: JSON.stringify({ Image: 'busybox', HostConfig: { PortBindings: { '80/tcp': [{ HostPort: 8080 }] } } }) });
    assert.match(port.json<{ message: string }>().message, /HostConfig\.PortBindings\.80\/tcp\[0\]\.HostPort must be a string, got number 8080/);
    const notObject = await request(sock, 'POST', '/containers/create', { body: '[1]' });
    assert.equal(notObject.status, 400);
    const empty = await request(sock, 'POST', '/containers/create', { body: '' });
    assert.equal(empty.status, 400);
  });

  it('creates a container with name and platform, Cmd as a string becoming a list', async () => {
    engine.calls.length = 0;
    const res = await request(sock, 'POST', '/v1.41/containers/create?name=x&platform=linux/amd64', { body: JSON.stringify({ Image: 'busybox', Cmd: 'true', HostConfig: { Memory: 1024 } }) });
    assert.equal(res.status, 201);
    assert.deepEqual(res.json(), { Id: 'f'.repeat(64), Warnings: [] });
    const [req, opts] = engine.callsTo('createContainer')[0]!;
    assert.deepEqual(req, { Image: 'busybox', Cmd: ['true'], HostConfig: { Memory: 1024 } });
    assert.deepEqual(opts, { name: 'x', platform: 'linux/amd64' });
  });

  it('answers start/stop with 204 or 304 and passes stop options', async () => {
    engine.calls.length = 0;
    assert.equal((await request(sock, 'POST', '/containers/web/start')).status, 304);
    assert.equal((await request(sock, 'POST', '/containers/web/stop?t=5&signal=SIGINT')).status, 204);
    assert.deepEqual(engine.callsTo('stopContainer'), [['web', { signal: 'SIGINT', timeout: 5 }]]);
    assert.equal((await request(sock, 'POST', '/containers/web/restart?t=-1')).status, 204);
    assert.deepEqual(engine.callsTo('restartContainer'), [['web', { timeout: -1 }]]);
    assert.equal((await request(sock, 'POST', '/containers/web/kill?signal=HUP')).status, 204);
    assert.deepEqual(engine.callsTo('killContainer'), [['web', 'HUP']]);
    assert.equal((await request(sock, 'POST', '/containers/web/rename?name=new')).status, 204);
    assert.equal((await request(sock, 'POST', '/containers/web/rename')).status, 400);
    assert.equal((await request(sock, 'DELETE', `/containers/${FAKE_CONTAINER_ID}?force=1&v=1`)).status, 204);
    assert.deepEqual(engine.callsTo('removeContainer'), [[FAKE_CONTAINER_ID, { force: true, volumes: true, link: false }]]);
    assert.equal((await request(sock, 'POST', '/containers/web/resize?h=40&w=120')).status, 200);
    assert.deepEqual(engine.callsTo('resizeContainer'), [['web', { h: 40, w: 120 }]]);
    const upd = await request(sock, 'POST', '/containers/web/update', { body: JSON.stringify({ Memory: 1 << 20, RestartPolicy: { Name: 'always' } }) });
    assert.deepEqual(upd.json(), { Warnings: [] });
    const prune = await request(sock, 'POST', '/containers/prune');
    assert.deepEqual(prune.json(), { ContainersDeleted: [], SpaceReclaimed: 0 });
  });

  it('changes, commit and auth', async () => {
    const changes = await request(sock, 'GET', '/v1.41/containers/web/changes');
    assert.equal(changes.status, 200);
    assert.deepEqual(changes.json(), [
      { Path: '/tmp', Kind: 0 },
      { Path: '/tmp/new', Kind: 1 },
      { Path: '/etc/motd', Kind: 2 },
    ]);
    assert.equal((await request(sock, 'GET', '/containers/nosuch/changes')).status, 404);

    // The docker CLI sends `null` as the body and every change as its own `changes` parameter.
    const commit = await request(sock, 'POST', '/commit?container=web&repo=app&tag=v2&comment=hi&author=me&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3D1', { body: 'null', headers: { 'Content-Type': 'application/json' } });
    assert.equal(commit.status, 201);
    assert.deepEqual(commit.json(), { Id: 'sha256:' + 'cd'.repeat(32) });
    assert.deepEqual(engine.callsTo('commitContainer').at(-1), [
      'web',
      { repo: 'app', tag: 'v2', comment: 'hi', author: 'me', changes: ['CMD ["sh"]', 'ENV A=1'], pause: true, config: undefined },
    ]);
    await request(sock, 'POST', '/commit?container=web&pause=0', { body: JSON.stringify({ Cmd: ['x'] }) });
    assert.deepEqual(engine.callsTo('commitContainer').at(-1)![1], { repo: undefined, tag: undefined, comment: undefined, author: undefined, changes: [], pause: false, config: { Cmd: ['x'] } });
    assert.equal((await request(sock, 'POST', '/commit')).status, 400);
    assert.equal((await request(sock, 'POST', '/commit?container=web', { body: JSON.stringify({ Cmd: 5 }) })).status, 400);

    const ok = await request(sock, 'POST', '/auth', { body: JSON.stringify({ username: 'u', password: 'p', serveraddress: '127.0.0.1:5000' }) });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json(), { Status: 'Login Succeeded', IdentityToken: '' });
    const denied = await request(sock, 'POST', '/auth', { body: JSON.stringify({ username: 'u', password: 'wrong', serveraddress: 'example.test' }) });
    assert.equal(denied.status, 401);
    assert.match(denied.json<{ message: string }>().message, /unauthorized/);
    assert.equal((await request(sock, 'POST', '/auth')).status, 400);
  });

  it('answers 501 for known unimplemented endpoints and 404 for unknown paths', async () => {
    const build = await request(sock, 'POST', '/v1.41/build');
    assert.equal(build.status, 501);
    assert.match(build.json<{ message: string }>().message, /^berth does not implement POST \/build: the image builder comes later/);
    for (const [method, path] of [['GET', '/swarm'], ['GET', '/containers/web/checkpoints'], ['GET', '/images/search?term=x'], ['POST', '/session']]) {
      const res = await request(sock, method!, path!);
      assert.equal(res.status, 501, path);
      assert.match(res.json<{ message: string }>().message, new RegExp(`^berth does not implement ${method} `));
    }
    const unknown = await request(sock, 'GET', '/nothing/here');
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json(), { message: 'page not found' });
    assert.equal((await request(sock, 'PATCH', '/containers/json')).status, 405);
  });

  it('serves networks with dockerd\'s statuses', async () => {
    const nets = (await request(sock, 'GET', '/networks')).json<{ Name: string; Id: string }[]>();
    assert.deepEqual(nets.map((n) => n.Name), ['bridge', 'host', 'none']);
    await request(sock, 'GET', '/networks?filters=' + encodeURIComponent('{"name":{"host":true}}'));
    assert.deepEqual(engine.callsTo('listNetworks').at(-1), [{ name: ['host'] }]);
    const one = await request(sock, 'GET', `/networks/${nets[1]!.Id.slice(0, 12)}`);
    assert.equal(one.json<{ Name: string }>().Name, 'host');
    assert.equal((await request(sock, 'GET', '/networks/mynet')).status, 404);
    assert.deepEqual((await request(sock, 'POST', '/networks/prune')).json(), { NetworksDeleted: [] });
    const created = await request(sock, 'POST', '/networks/create', { body: JSON.stringify({ Name: 'n1', IPAM: { Config: [{ Subnet: '10.80.9.0/24' }] } }) });
    assert.equal(created.status, 201);
    assert.deepEqual(created.json(), { Id: 'ee'.repeat(32), Warning: '' });
    assert.equal((await request(sock, 'POST', '/networks/create', { body: JSON.stringify({ Name: 'bridge' }) })).status, 409);
    assert.equal((await request(sock, 'POST', '/networks/create', { body: JSON.stringify({ Name: 'x', Internal: 'yes' }) })).status, 400);
    assert.equal((await request(sock, 'POST', '/networks/create', { body: JSON.stringify({ Name: 'x', IPAM: { Config: [{ Subnet: 5 }] } }) })).status, 400);
    assert.equal((await request(sock, 'POST', '/networks/create', { body: '{}' })).status, 400);
    const builtin = await request(sock, 'DELETE', '/networks/bridge');
    assert.equal(builtin.status, 403);
    assert.match(builtin.json<{ message: string }>().message, /pre-defined network/);
    assert.equal((await request(sock, 'DELETE', '/networks/host')).status, 204);
    assert.equal((await request(sock, 'POST', '/networks/bridge/connect', { body: JSON.stringify({ Container: 'web', EndpointConfig: { Aliases: ['w'] } }) })).status, 200);
    assert.deepEqual(engine.callsTo('connectNetwork').at(-1), ['bridge', { Container: 'web', EndpointConfig: { Aliases: ['w'] } }]);
    assert.equal((await request(sock, 'POST', '/networks/bridge/connect', { body: JSON.stringify({ EndpointConfig: {} }) })).status, 400);
    assert.equal((await request(sock, 'POST', '/networks/nope/disconnect', { body: JSON.stringify({ Container: 'web' }) })).status, 404);
    assert.equal((await request(sock, 'POST', '/networks/bridge/disconnect', { body: JSON.stringify({ Container: 'web', Force: true }) })).status, 200);
  });

  it('serves volumes', async () => {
    const created = await request(sock, 'POST', '/volumes/create', { body: JSON.stringify({ Name: 'v1', Labels: { a: 'b' } }) });
    assert.equal(created.status, 201);
    assert.equal(created.json<{ Name: string }>().Name, 'v1');
    assert.equal((await request(sock, 'POST', '/volumes/create', { body: JSON.stringify({ Labels: { a: 1 } }) })).status, 400);
    const list = (await request(sock, 'GET', '/volumes?filters=' + encodeURIComponent('{"dangling":["true"]}'))).json<{ Volumes: unknown[]; Warnings: string[] }>();
    assert.equal(list.Volumes.length, 1);
    assert.equal((await request(sock, 'GET', '/volumes/data')).status, 200);
    assert.equal((await request(sock, 'GET', '/volumes/nosuch')).status, 404);
    assert.equal((await request(sock, 'DELETE', '/volumes/data?force=1')).status, 204);
    assert.deepEqual((await request(sock, 'POST', '/volumes/prune')).json(), { VolumesDeleted: [], SpaceReclaimed: 0 });
  });

  it('answers archive HEAD/GET with the path stat header and takes PUT bodies', async () => {
    const head = await request(sock, 'HEAD', '/containers/web/archive?path=/etc');
    assert.equal(head.status, 200);
    const stat = JSON.parse(Buffer.from(String(head.headers['x-docker-container-path-stat']), 'base64').toString());
    assert.deepEqual(stat, engine.pathStat);
    const get = await request(sock, 'GET', '/containers/web/archive?path=/etc');
    assert.equal(get.headers['content-type'], 'application/x-tar');
    assert.equal(get.body.length, 1024);
    assert.equal((await request(sock, 'HEAD', '/containers/web/archive?path=/nosuch')).status, 404);
    assert.equal((await request(sock, 'GET', '/containers/web/archive')).status, 400);
    engine.received = [];
    const put = await request(sock, 'PUT', '/containers/web/archive?path=/tmp&noOverwriteDirNonDir=1', { body: Buffer.alloc(3000, 7) });
    assert.equal(put.status, 200);
    assert.equal(Buffer.concat(engine.received).length, 3000);
    assert.deepEqual(engine.callsTo('putArchive').at(-1), ['web', '/tmp', { noOverwriteDirNonDir: true, copyUIDGID: false }]);
  });

  it('serves exec create, inspect and resize', async () => {
    const created = await request(sock, 'POST', '/containers/web/exec', { body: JSON.stringify({ Cmd: ['ls'], AttachStdout: true }) });
    assert.equal(created.status, 201);
    assert.deepEqual(created.json(), { Id: 'e'.repeat(64) });
    assert.equal((await request(sock, 'POST', '/containers/web/exec', { body: JSON.stringify({ Cmd: [] }) })).status, 400);
    assert.equal((await request(sock, 'GET', `/exec/${'e'.repeat(64)}/json`)).json<{ ExitCode: number }>().ExitCode, 0);
    assert.equal((await request(sock, 'POST', `/exec/${'e'.repeat(64)}/resize?h=1&w=2`)).status, 200);
    assert.equal((await request(sock, 'POST', `/exec/${'e'.repeat(64)}/resize?h=x&w=2`)).status, 400);
    const detached = await request(sock, 'POST', `/exec/${'e'.repeat(64)}/start`, { body: JSON.stringify({ Detach: true }) });
    assert.equal(detached.status, 200);
    assert.equal(detached.body.length, 0);
  });

  it('serves info, df and top, and logs one line per request', async () => {
    assert.equal((await request(sock, 'GET', '/info')).json<{ OSType: string }>().OSType, 'linux');
    assert.ok('LayersSize' in (await request(sock, 'GET', '/system/df')).json<object>());
    assert.deepEqual((await request(sock, 'GET', '/containers/web/top?ps_args=aux')).json<{ Titles: string[] }>().Titles, ['PID', 'CMD']);
    assert.deepEqual(engine.callsTo('topContainer').at(-1), ['web', 'aux']);
    const line = logged.find((l) => l.msg === 'request' && (l.fields as { url?: string }).url === '/info');
    assert.ok(line);
    assert.equal((line.fields as { status: number }).status, 200);
  });

  it('listens on TCP only when asked', async () => {
    assert.equal(api.tcpServer, undefined);
    const withTcp = await startDockerApi({ engine, socketPath: join(dir, 'tcp.sock'), tcp: { host: '127.0.0.1', port: 0 } });
    const addr = withTcp.tcpServer!.address() as net.AddressInfo;
    const res = await fetch(`http://127.0.0.1:${addr.port}/v1.41/version`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { ApiVersion: string }).ApiVersion, '1.47');
    await withTcp.close();
  });

  it('reads a path that starts with // as a path', async () => {
    assert.equal((await request(sock, 'GET', '//_ping')).status, 200);
    assert.equal((await request(sock, 'GET', '/v1.41//containers/json')).status, 200);
  });

  it('answers a malformed request with 400', async () => {
    const s = net.connect({ path: sock });
    const data = await new Promise<string>((resolve) => {
      let buf = '';
      s.on('data', (d) => (buf += d.toString()));
      s.on('close', () => resolve(buf));
      s.write('THIS IS NOT HTTP\r\n\r\n');
    });
    assert.match(data, /^HTTP\/1\.1 400/);
  });
});
