// The raw Docker API of a private berthd, fed malformed and impossible requests: every answer
// has the right status and a message that names what was wrong. Root; only this test's
// containers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBerthd, berthdSkipReason, dockerCli, importBusybox, type ApiResponse, type Berthd } from './helpers/berthd.js';

const skip = berthdSkipReason() || (dockerCli() ? false : 'no docker CLI installed');
const IMAGE = 'berth-test/busybox:api';
let d: Berthd;

before(async () => {
  if (skip) return;
  d = await startBerthd({ label: 'api' });
  await importBusybox(d, IMAGE);
});

after(async () => {
  if (skip) return;
  assert.deepEqual(await d.stop(), []);
});

function message(r: ApiResponse): string {
  const text = r.body.toString('utf8');
  try {
    return String(r.json<{ message?: unknown }>().message ?? text);
  } catch {
    return text;
  }
}

function expectError(r: ApiResponse, status: number, pattern: RegExp, what: string): void {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.body.toString('utf8')}`);
  assert.match(message(r), pattern, what);
  assert.match(String(r.headers['content-type']), /application\/json/, `${what}: error bodies are JSON`);
}

async function createContainer(body: Record<string, unknown>, name?: string): Promise<string> {
  const r = await d.api('POST', `/containers/create${name ? `?name=${name}` : ''}`, { Image: IMAGE, ...body });
  assert.equal(r.status, 201, r.body.toString('utf8'));
  return r.json<{ Id: string }>().Id;
}

test('a create body that is not JSON is refused with the parse error', { skip }, async () => {
  const r = await d.api('POST', '/containers/create', Buffer.from('{"Image": "x",'), { 'Content-Type': 'application/json' });
  expectError(r, 400, /JSON/i, 'truncated JSON');
  const arr = await d.api('POST', '/containers/create', [1, 2]);
  expectError(arr, 400, /object/i, 'a JSON array as the body');
  const empty = await d.api('POST', '/containers/create', Buffer.alloc(0), { 'Content-Type': 'application/json' });
  assert.equal(empty.status, 400, `an empty body: ${empty.body.toString('utf8')}`);
});

test('a create body with the wrong Content-Type or a null body is refused', { skip }, async () => {
  const text = await d.api('POST', '/containers/create', Buffer.from(JSON.stringify({ Image: IMAGE })), { 'Content-Type': 'text/plain' });
  expectError(text, 400, /Content-Type|text\/plain/i, 'a text/plain body');
  const nul = await d.api('POST', '/containers/create', Buffer.from('null'), { 'Content-Type': 'application/json' });
  assert.equal(nul.status, 400, `a null body: ${nul.body.toString('utf8')}`);
  const str = await d.api('POST', '/containers/create', Buffer.from('"just a string"'), { 'Content-Type': 'application/json' });
  expectError(str, 400, /object/i, 'a JSON string as the body');
});

test('unsupported or invalid create options are refused by name, never ignored', { skip }, async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ HostConfig: { Runtime: 'nvidia' } }, /Runtime|nvidia/],
    [{ HostConfig: { CapAdd: ['CAP_NOPE'] } }, /CAP_NOPE|CapAdd/],
    [{ HostConfig: { PortBindings: { 'notaport/tcp': [{ HostPort: '80' }] } } }, /notaport|port/i],
    [{ HostConfig: { Memory: -5 } }, /Memory/],
    [{ HostConfig: { RestartPolicy: { Name: 'always' }, AutoRemove: true } }, /AutoRemove|RestartPolicy|conflict/i],
    [{ HostConfig: { Binds: ['relative/path:/data'] } }, /relative\/path|Binds|absolute/i],
    [{ HostConfig: { VolumesFrom: ['nosuch'] } }, /nosuch|VolumesFrom/],
    [{ HostConfig: { Isolation: 'hyperv' } }, /Isolation|hyperv/],
    [{ User: 'nosuchuser' }, /nosuchuser/],
  ];
  const refused: string[] = [];
  for (const [body, pattern] of cases) {
    const r = await d.api('POST', '/containers/create', { Image: IMAGE, Cmd: ['true'], ...body });
    if (r.status === 201) {
      // Some of these (a user missing from /etc/passwd) fail only at start; that must fail then.
      const id = r.json<{ Id: string }>().Id;
      const start = await d.api('POST', `/containers/${id}/start`);
      await d.api('DELETE', `/containers/${id}?force=1`);
      if (start.status >= 400 && pattern.test(message(start))) continue;
      refused.push(`${JSON.stringify(body)}: accepted (start ${start.status} ${message(start)})`);
      continue;
    }
    if (r.status !== 400 || !pattern.test(message(r))) refused.push(`${JSON.stringify(body)}: ${r.status} ${message(r)}`);
  }
  assert.deepEqual(refused, []);
});

test('bad query values are 400', { skip }, async () => {
  const id = await createContainer({ Cmd: ['sleep', '60'] });
  assert.equal((await d.api('POST', `/containers/${id}/start`)).status, 204);
  for (const path of [`/containers/${id}/stop?t=abc`, `/containers/${id}/restart?t=1.5x`, `/containers/json?limit=many`]) {
    const r = await d.api(path.includes('/json') ? 'GET' : 'POST', path);
    assert.equal(r.status, 400, `${path}: ${r.status} ${r.body.toString('utf8')}`);
  }
  assert.equal((await d.api('DELETE', `/containers/${id}?force=1`)).status, 204);
});

test('wrong types in the create config are refused naming the field', { skip }, async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ Cmd: 5 }, /Cmd/],
    [{ Cmd: ['sh', 7] }, /Cmd\[1\]/],
    [{ Env: 'A=1' }, /Env/],
    [{ Tty: 'yes' }, /Tty/],
    [{ HostConfig: { Memory: 'lots' } }, /Memory/],
    [{ HostConfig: { RestartPolicy: { Name: 'sometimes' } } }, /RestartPolicy|sometimes/],
    [{ Image: 42 }, /Image/],
  ];
  for (const [body, pattern] of cases) {
    const r = await d.api('POST', '/containers/create', { Image: IMAGE, ...body });
    expectError(r, 400, pattern, JSON.stringify(body));
  }
  const list = await d.api('GET', '/containers/json?all=1');
  assert.deepEqual(list.json(), [], 'no refused create left a container behind');
  // Go's StrSlice reads a lone string as a one-element list; dockerd accepts it, so berth does.
  const id = await createContainer({ Cmd: 'true' });
  const inspect = await d.api('GET', `/containers/${id}/json`);
  assert.deepEqual(inspect.json<{ Config: { Cmd: string[] } }>().Config.Cmd, ['true']);
  assert.equal((await d.api('DELETE', `/containers/${id}`)).status, 204);
});

test('an unknown image on create is 404 No such image', { skip }, async () => {
  const r = await d.api('POST', '/containers/create', { Image: 'nosuch/image:1' });
  expectError(r, 404, /No such image/i, 'unknown image');
  assert.match(message(r), /nosuch\/image:1/);
});

test('a name already in use is 409 naming the holder; a bad name is 400', { skip }, async () => {
  const id = await createContainer({ Cmd: ['true'] }, 'taken');
  const r = await d.api('POST', '/containers/create?name=taken', { Image: IMAGE });
  expectError(r, 409, /already in use/, 'duplicate name');
  assert.match(message(r), new RegExp(id.slice(0, 12)));
  const bad = await d.api('POST', '/containers/create?name=-bad!name', { Image: IMAGE });
  expectError(bad, 400, /name/i, 'an invalid name');
  const other = await createContainer({ Cmd: ['true'] }, 'other');
  const rename = await d.api('POST', `/containers/${other}/rename?name=taken`);
  expectError(rename, 409, /already in use/, 'rename onto a name in use');
  for (const c of [id, other]) assert.equal((await d.api('DELETE', `/containers/${c}`)).status, 204);
});

test('every container endpoint answers 404 No such container for an unknown one', { skip }, async () => {
  const endpoints: [string, string, unknown?][] = [
    ['GET', '/containers/nosuch/json'],
    ['GET', '/containers/nosuch/top'],
    ['GET', '/containers/nosuch/logs?stdout=1'],
    ['GET', '/containers/nosuch/export'],
    ['GET', '/containers/nosuch/stats?stream=0'],
    ['POST', '/containers/nosuch/resize?h=10&w=10'],
    ['POST', '/containers/nosuch/start'],
    ['POST', '/containers/nosuch/stop'],
    ['POST', '/containers/nosuch/restart'],
    ['POST', '/containers/nosuch/kill'],
    ['POST', '/containers/nosuch/update', { Memory: 64 << 20 }],
    ['POST', '/containers/nosuch/rename?name=x2'],
    ['POST', '/containers/nosuch/pause'],
    ['POST', '/containers/nosuch/unpause'],
    ['POST', '/containers/nosuch/wait'],
    ['DELETE', '/containers/nosuch'],
    ['DELETE', '/containers/nosuch?force=1'],
    ['HEAD', '/containers/nosuch/archive?path=/'],
    ['GET', '/containers/nosuch/archive?path=/'],
    ['POST', '/containers/nosuch/exec', { Cmd: ['true'] }],
  ];
  for (const [method, path, body] of endpoints) {
    const r = await d.api(method, path, body);
    assert.equal(r.status, 404, `${method} ${path}: ${r.status} ${r.body.toString('utf8')}`);
    if (method !== 'HEAD') assert.match(message(r), /No such container: nosuch/, `${method} ${path}`);
  }
  const put = await d.api('PUT', '/containers/nosuch/archive?path=/', Buffer.alloc(1024));
  assert.equal(put.status, 404, `PUT archive: ${put.body.toString('utf8')}`);
  const hijacks: [string, Record<string, string>][] = [
    ['/containers/nosuch/attach?stream=1&stdout=1', {}],
    ['/containers/nosuch/attach?stream=1&stdout=1', { Connection: 'Upgrade', Upgrade: 'tcp' }],
  ];
  for (const [path, headers] of hijacks) {
    const r = await d.api('POST', path, undefined, headers);
    expectError(r, 404, /No such container: nosuch/, `attach ${JSON.stringify(headers)}`);
  }
  const execs: [string, string][] = [
    ['GET', '/exec/nosuch/json'],
    ['POST', '/exec/nosuch/resize?h=1&w=1'],
    ['POST', '/exec/nosuch/start'],
  ];
  for (const [method, path] of execs) {
    const r = await d.api(method, path);
    expectError(r, 404, /No such exec instance/i, `${method} ${path}`);
  }
});

test('wait with an unknown condition is 400', { skip }, async () => {
  const id = await createContainer({ Cmd: ['true'] });
  const r = await d.api('POST', `/containers/${id}/wait?condition=whenever`);
  expectError(r, 400, /condition/i, 'bad wait condition');
  assert.equal((await d.api('DELETE', `/containers/${id}`)).status, 204);
});

test('unsupported endpoints are 501 naming them; unknown paths 404; wrong methods 405', { skip }, async () => {
  const cases: [string, string][] = [
    ['POST', '/build'],
    ['GET', '/swarm'],
    ['GET', '/services'],
    ['POST', '/session'],
    ['GET', '/images/search?term=x'],
    ['GET', '/containers/x/checkpoints'],
  ];
  for (const [method, path] of cases) {
    const r = await d.api(method, path);
    expectError(r, 501, new RegExp(`${method} ${path.split('?')[0]!.replace(/[/]/g, '\\/')}`), `${method} ${path}`);
  }
  const versioned = await d.api('POST', '/v1.43/build');
  expectError(versioned, 501, /\/build/, 'versioned unsupported path');
  const unknown = await d.api('GET', '/no/such/thing');
  assert.equal(unknown.status, 404, unknown.body.toString('utf8'));
  const wrong = await d.api('PUT', '/containers/json');
  assert.ok([404, 405].includes(wrong.status), `PUT /containers/json: ${wrong.status}`);
  const future = await d.api('GET', '/v9.99/version');
  assert.equal(future.status, 400, `an API version newer than the server's: ${future.body.toString('utf8')}`);
});

test('invalid filters are 400', { skip }, async () => {
  const cases = [
    '/containers/json?filters=notjson',
    `/containers/json?filters=${encodeURIComponent('{"nosuchfilter":["x"]}')}`,
    `/containers/json?filters=${encodeURIComponent('{"status":["sleepy"]}')}`,
    `/images/json?filters=${encodeURIComponent('{"bogus":["x"]}')}`,
    `/volumes?filters=${encodeURIComponent('{"bogus":["x"]}')}`,
    `/containers/prune?filters=${encodeURIComponent('{"bogus":["x"]}')}`,
    `/containers/json?filters=${encodeURIComponent('{"name":["(unclosed"]}')}`,
    `/containers/json?filters=${encodeURIComponent('{"exited":["zero"]}')}`,
    `/containers/json?filters=${encodeURIComponent('{"health":["poorly"]}')}`,
  ];
  for (const path of cases) {
    const method = path.startsWith('/containers/prune') ? 'POST' : 'GET';
    const r = await d.api(method, path);
    expectError(r, 400, /filter/i, path);
  }
  const ok = await d.api('GET', `/containers/json?all=1&filters=${encodeURIComponent('{"status":["exited"]}')}`);
  assert.equal(ok.status, 200, ok.body.toString('utf8'));
});

test('exec on a created or stopped container is 409; start twice is 304; stop a stopped one is 304', { skip }, async () => {
  const id = await createContainer({ Cmd: ['sleep', '60'] });
  const created = await d.api('POST', `/containers/${id}/exec`, { Cmd: ['true'] });
  expectError(created, 409, /not running/i, 'exec on a created container');
  assert.equal((await d.api('POST', `/containers/${id}/start`)).status, 204);
  assert.equal((await d.api('POST', `/containers/${id}/start`)).status, 304, 'start a running container');
  const rm = await d.api('DELETE', `/containers/${id}`);
  expectError(rm, 409, /running|stop/i, 'rm without force on a running container');
  const ex = await d.api('POST', `/containers/${id}/exec`, { Cmd: ['true'], AttachStdout: true });
  assert.equal(ex.status, 201, ex.body.toString('utf8'));
  const execId = ex.json<{ Id: string }>().Id;
  const badExec = await d.api('POST', `/containers/${id}/exec`, { Cmd: true });
  expectError(badExec, 400, /Cmd/, 'exec with Cmd as a boolean');
  const emptyExec = await d.api('POST', `/containers/${id}/exec`, { Cmd: [] });
  expectError(emptyExec, 400, /Cmd/, 'exec with an empty Cmd');
  assert.equal((await d.api('POST', `/containers/${id}/kill`)).status, 204);
  await d.api('POST', `/containers/${id}/wait`);
  const stopped = await d.api('POST', `/containers/${id}/exec`, { Cmd: ['true'] });
  expectError(stopped, 409, /not running/i, 'exec on a stopped container');
  const startExec = await d.api('POST', `/exec/${execId}/start`, { Detach: true });
  assert.equal(startExec.status, 409, `starting an exec whose container stopped: ${startExec.status} ${startExec.body.toString('utf8')}`);
  assert.equal((await d.api('POST', `/containers/${id}/stop`)).status, 304, 'stop a stopped container');
  const kill = await d.api('POST', `/containers/${id}/kill`);
  expectError(kill, 409, /not running/i, 'kill a stopped container');
  const pause = await d.api('POST', `/containers/${id}/pause`);
  expectError(pause, 409, /not running/i, 'pause a stopped container');
  const unpause = await d.api('POST', `/containers/${id}/unpause`);
  expectError(unpause, 409, /not paused|not running/i, 'unpause a stopped container');
  assert.equal((await d.api('DELETE', `/containers/${id}`)).status, 204);
});

test('bad signal names, resize sizes and kill of a created container are refused', { skip }, async () => {
  const id = await createContainer({ Cmd: ['sleep', '60'] });
  assert.equal((await d.api('POST', `/containers/${id}/start`)).status, 204);
  const sig = await d.api('POST', `/containers/${id}/kill?signal=SIGNOPE`);
  expectError(sig, 400, /SIGNOPE|signal/i, 'an unknown signal');
  const resize = await d.api('POST', `/containers/${id}/resize?h=abc&w=10`);
  assert.equal(resize.status, 400, `resize with h=abc: ${resize.body.toString('utf8')}`);
  const logs = await d.api('GET', `/containers/${id}/logs`);
  expectError(logs, 400, /stdout|stderr/i, 'logs without stdout or stderr');
  const archive = await d.api('GET', `/containers/${id}/archive?path=/no/such/file`);
  expectError(archive, 404, /no\/such\/file|No such/i, 'archive of a missing path');
  const noPath = await d.api('GET', `/containers/${id}/archive`);
  assert.equal(noPath.status, 400, `archive without path: ${noPath.body.toString('utf8')}`);
  const update = await d.api('POST', `/containers/${id}/update`, { Memory: 'x' });
  expectError(update, 400, /Memory/, 'update with Memory as a string');
  assert.equal((await d.api('DELETE', `/containers/${id}?force=1`)).status, 204);
});

test('image and volume endpoints: unknown names are 404, bad requests 400, in-use 409', { skip }, async () => {
  expectError(await d.api('GET', '/images/nosuch:1/json'), 404, /No such image/i, 'inspect an unknown image');
  expectError(await d.api('DELETE', '/images/nosuch:1'), 404, /No such image/i, 'rmi an unknown image');
  expectError(await d.api('POST', '/images/nosuch:1/tag?repo=x&tag=1'), 404, /No such image/i, 'tag an unknown image');
  expectError(await d.api('GET', '/images/nosuch:1/history'), 404, /No such image/i, 'history of an unknown image');
  const badTag = await d.api('POST', `/images/${IMAGE}/tag?repo=${encodeURIComponent('lower/UPPER')}&tag=1`);
  expectError(badTag, 400, /UPPER|reference|repository|invalid/i, 'tag with an invalid repository');
  expectError(await d.api('GET', '/volumes/nosuch'), 404, /no such volume|nosuch/i, 'inspect an unknown volume');
  expectError(await d.api('DELETE', '/volumes/nosuch'), 404, /no such volume|nosuch/i, 'remove an unknown volume');
  const badVol = await d.api('POST', '/volumes/create', { Name: 'bad/name' });
  expectError(badVol, 400, /bad\/name|name/i, 'a volume name with a slash');
  const badDriver = await d.api('POST', '/volumes/create', { Name: 'v1', Driver: 'nfs-magic' });
  expectError(badDriver, 400, /nfs-magic|driver/i, 'an unknown volume driver');
  const vol = await d.api('POST', '/volumes/create', { Name: 'inuse' });
  assert.equal(vol.status, 201, vol.body.toString('utf8'));
  const id = await createContainer({ Cmd: ['true'], HostConfig: { Binds: ['inuse:/data'] } });
  expectError(await d.api('DELETE', '/volumes/inuse'), 409, /in use/i, 'remove a volume in use');
  const rmi = await d.api('DELETE', `/images/${IMAGE}`);
  expectError(rmi, 409, /container|in use|being used/i, 'rmi of an image a container uses');
  assert.equal((await d.api('DELETE', `/containers/${id}?v=1`)).status, 204);
  assert.equal((await d.api('DELETE', '/volumes/inuse')).status, 204);
});

test('the API stays up after all of this and lists nothing left behind', { skip }, async () => {
  const ping = await d.api('GET', '/_ping');
  assert.equal(ping.status, 200);
  const list = await d.api('GET', '/containers/json?all=1');
  assert.deepEqual(list.json(), []);
  const vols = await d.api('GET', '/volumes');
  assert.deepEqual(vols.json<{ Volumes: unknown[] }>().Volumes, []);
});
