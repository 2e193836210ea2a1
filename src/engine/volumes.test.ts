import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBerthError } from '../errors.js';
import { ANONYMOUS_LABEL, VolumeStore } from './volumes.js';

function tempRoot(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-volumes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const unused = (): string[] => [];
const is = (code: Parameters<typeof isBerthError>[1], pattern: RegExp) => (err: unknown) => isBerthError(err, code) && pattern.test(err.message);

test('create makes _data and volume.json and returns Docker\'s shape', async (t) => {
  const root = join(tempRoot(t), 'volumes');
  const store = new VolumeStore(root);
  const v = await store.create({ Name: 'data', Labels: { app: 'web' } });
  assert.equal(v.Name, 'data');
  assert.equal(v.Driver, 'local');
  assert.equal(v.Scope, 'local');
  assert.equal(v.Mountpoint, join(root, 'data', '_data'));
  assert.deepEqual(v.Labels, { app: 'web' });
  assert.deepEqual(v.Options, {});
  assert.match(v.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(statSync(v.Mountpoint).isDirectory(), true);
  const record = JSON.parse(readFileSync(join(root, 'data', 'volume.json'), 'utf8'));
  assert.deepEqual(record, { Name: 'data', Driver: 'local', CreatedAt: v.CreatedAt, Labels: { app: 'web' }, Options: {} });
  assert.deepEqual(await store.get('data'), v);
  assert.deepEqual(await new VolumeStore(root).list(), [v]);
});

test('a volume without a name gets a random 64-hex name; anonymous ones are marked', async (t) => {
  const store = new VolumeStore(tempRoot(t));
  const a = await store.create({});
  assert.match(a.Name, /^[0-9a-f]{64}$/);
  const b = await store.create({ anonymous: true });
  assert.notEqual(a.Name, b.Name);
  assert.deepEqual(b.Labels, { [ANONYMOUS_LABEL]: '' });
  assert.equal((await store.record(b.Name)).Anonymous, true);
  assert.equal((await store.record(a.Name)).Anonymous, undefined);
});

test('creating an existing name returns it; different labels conflict', async (t) => {
  const store = new VolumeStore(tempRoot(t));
  const v = await store.create({ Name: 'data', Labels: { a: '1' } });
  assert.deepEqual(await store.create({ Name: 'data' }), v);
  assert.deepEqual(await store.create({ Name: 'data', Labels: { a: '1' } }), v);
  await assert.rejects(store.create({ Name: 'data', Labels: { a: '2' } }), is('Conflict', /volume data already exists with different labels/));
  // Concurrent creates of one name make one volume.
  const [x, y] = await Promise.all([store.create({ Name: 'same' }), store.create({ Name: 'same' })]);
  assert.deepEqual(x, y);
});

test('create refuses other drivers, driver options and bad names', async (t) => {
  const store = new VolumeStore(tempRoot(t));
  await assert.rejects(store.create({ Name: 'x1', Driver: 'nfs' }), is('InvalidArgument', /volume driver 'nfs' is not supported/));
  await assert.rejects(
    store.create({ Name: 'x1', DriverOpts: { type: 'tmpfs', device: 'tmpfs' } }),
    is('InvalidArgument', /volume driver options 'type', 'device' not supported/),
  );
  for (const name of ['a', '-ab', '../etc', 'a/b', 'with space', '.hidden']) {
    await assert.rejects(store.create({ Name: name }), is('InvalidArgument', /invalid volume name/), name);
  }
  assert.equal((await store.create({ Name: 'ok_name-1.2', Driver: 'local' })).Name, 'ok_name-1.2');
  const fromJson = JSON.parse('{"Name":null,"Driver":null,"DriverOpts":null,"Labels":null}') as Record<string, never>;
  assert.match((await store.create(fromJson)).Name, /^[0-9a-f]{64}$/);
  await store.remove((await store.list()).find((v) => v.Name.length === 64)!.Name, { inUse: unused });
  assert.deepEqual((await store.list()).map((v) => v.Name), ['ok_name-1.2']);
});

test('get and remove of a missing volume say no such volume', async (t) => {
  const store = new VolumeStore(tempRoot(t));
  await assert.rejects(store.get('nope'), is('NotFound', /^no such volume: nope$/));
  await assert.rejects(store.get('../../etc'), is('NotFound', /no such volume/));
  await assert.rejects(store.remove('nope', { inUse: unused }), is('NotFound', /no such volume: nope/));
  await store.remove('nope', { force: true, inUse: unused });
  await assert.rejects(store.usage('nope'), is('NotFound', /no such volume/));
});

test('a half-created volume (no volume.json) is invisible and can be created again', async (t) => {
  const root = tempRoot(t);
  mkdirSync(join(root, 'half', '_data'), { recursive: true });
  mkdirSync(join(root, '.removing-old-1234'), { recursive: true });
  const store = new VolumeStore(root);
  assert.deepEqual(await store.list(), []);
  await assert.rejects(store.get('half'), is('NotFound', /no such volume/));
  const v = await store.create({ Name: 'half' });
  assert.deepEqual((await store.list()).map((x) => x.Name), ['half']);
  assert.equal(v.Name, 'half');
});

test('remove deletes the volume unless containers use it (even with force)', async (t) => {
  const root = tempRoot(t);
  const store = new VolumeStore(root);
  const v = await store.create({ Name: 'data' });
  writeFileSync(join(v.Mountpoint, 'file'), 'x');
  const users = (name: string): string[] => (name === 'data' ? ['c1', 'c2'] : []);
  await assert.rejects(store.remove('data', { inUse: users }), is('Conflict', /remove data: volume is in use - \[c1, c2\]/));
  await assert.rejects(store.remove('data', { force: true, inUse: users }), is('Conflict', /in use/));
  await store.remove('data', { inUse: unused });
  assert.deepEqual(readdirSync(root), []);
  await assert.rejects(store.get('data'), is('NotFound', /no such volume/));
});

test('list filters by name, driver, label and dangling', async (t) => {
  const store = new VolumeStore(tempRoot(t));
  await store.create({ Name: 'web-data', Labels: { app: 'web', tier: 'front' } });
  await store.create({ Name: 'db-data', Labels: { app: 'db' } });
  await store.create({ Name: 'cache' });
  const names = async (filters: Record<string, string[]>, inUse?: (n: string) => string[]) =>
    (await store.list({ filters, inUse })).map((v) => v.Name);
  assert.deepEqual(await names({}), ['cache', 'db-data', 'web-data']);
  assert.deepEqual(await names({ name: ['data'] }), ['db-data', 'web-data']);
  assert.deepEqual(await names({ name: ['^web'] }), ['web-data']);
  assert.deepEqual(await names({ name: ['cache', 'db'] }), ['cache', 'db-data']);
  assert.deepEqual(await names({ driver: ['local'] }), ['cache', 'db-data', 'web-data']);
  assert.deepEqual(await names({ driver: ['nfs'] }), []);
  assert.deepEqual(await names({ label: ['app'] }), ['db-data', 'web-data']);
  assert.deepEqual(await names({ label: ['app=web', 'tier=front'] }), ['web-data']);
  const inUse = (n: string): string[] => (n === 'cache' ? ['c1'] : []);
  assert.deepEqual(await names({ dangling: ['true'] }, inUse), ['db-data', 'web-data']);
  assert.deepEqual(await names({ dangling: ['0'] }, inUse), ['cache']);
});

test('prune removes unused anonymous volumes, all=true every unused one, with label filters', async (t) => {
  const store = new VolumeStore(tempRoot(t));
  const anon = await store.create({ anonymous: true });
  writeFileSync(join(anon.Mountpoint, 'f'), Buffer.alloc(1000));
  const anonUsed = await store.create({ anonymous: true });
  await store.create({ Name: 'named', Labels: { keep: 'yes' } });
  await store.create({ Name: 'named2', Labels: { env: 'test' } });
  await store.create({ Name: 'named3' });
  const inUse = (n: string): string[] => (n === anonUsed.Name ? ['c1'] : []);

  const first = await store.prune({ filters: {}, inUse });
  assert.deepEqual(first, { VolumesDeleted: [anon.Name], SpaceReclaimed: 1000 });

  assert.deepEqual(await store.prune({ filters: { all: ['true'], label: ['env=test'] }, inUse }), { VolumesDeleted: ['named2'], SpaceReclaimed: 0 });
  assert.deepEqual(await store.prune({ filters: { all: ['1'], 'label!': ['keep'] }, inUse }), { VolumesDeleted: ['named3'], SpaceReclaimed: 0 });
  assert.deepEqual((await store.list()).map((v) => v.Name).sort(), [anonUsed.Name, 'named'].sort());
  assert.deepEqual(await store.prune({ filters: { all: ['true'] }, inUse }), { VolumesDeleted: ['named'], SpaceReclaimed: 0 });
  assert.deepEqual((await store.list()).map((v) => v.Name), [anonUsed.Name]);
});

test('prune deletes what an interrupted remove left behind', async (t) => {
  const root = tempRoot(t);
  mkdirSync(join(root, '.removing-old-1234', '_data'), { recursive: true });
  writeFileSync(join(root, '.removing-old-1234', '_data', 'f'), 'x');
  const store = new VolumeStore(root);
  assert.deepEqual(await store.prune({ filters: {}, inUse: unused }), { VolumesDeleted: [], SpaceReclaimed: 0 });
  assert.deepEqual(readdirSync(root), []);
});

test('usage counts file bytes once per inode', async (t) => {
  const store = new VolumeStore(tempRoot(t));
  const v = await store.create({ Name: 'data' });
  assert.equal(await store.usage('data'), 0);
  mkdirSync(join(v.Mountpoint, 'd', 'e'), { recursive: true });
  writeFileSync(join(v.Mountpoint, 'a'), Buffer.alloc(100));
  writeFileSync(join(v.Mountpoint, 'd', 'e', 'b'), Buffer.alloc(50));
  linkSync(join(v.Mountpoint, 'a'), join(v.Mountpoint, 'd', 'hard'));
  symlinkSync('a', join(v.Mountpoint, 'link'));
  assert.equal(await store.usage('data'), 150 + 1);
});

test('copyUp fills an empty volume from a directory, once', async (t) => {
  const tmp = tempRoot(t);
  const store = new VolumeStore(join(tmp, 'volumes'));
  const src = join(tmp, 'rootfs', 'var', 'lib', 'app');
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'config'), 'hello');
  writeFileSync(join(src, 'sub', 'x'), 'x');
  symlinkSync('/etc/passwd', join(src, 'abs-link'));
  chmodSync(src, 0o750);
  const v = await store.create({ Name: 'app' });
  assert.equal(await store.copyUp('app', src), true);
  assert.equal(readFileSync(join(v.Mountpoint, 'config'), 'utf8'), 'hello');
  assert.equal(readFileSync(join(v.Mountpoint, 'sub', 'x'), 'utf8'), 'x');
  assert.equal(lstatSync(join(v.Mountpoint, 'abs-link')).isSymbolicLink(), true);
  // The volume's root takes the directory's mode, as Docker.
  assert.equal(statSync(v.Mountpoint).mode & 0o777, 0o750);
  assert.deepEqual(readdirSync(join(tmp, 'volumes', 'app')).sort(), ['_data', 'volume.json']);

  writeFileSync(join(src, 'later'), 'y');
  assert.equal(await store.copyUp('app', src), false);
  assert.equal(existsSync(join(v.Mountpoint, 'later')), false);
});

test('copyUp copies nothing from a missing path or a symlink', async (t) => {
  const tmp = tempRoot(t);
  const store = new VolumeStore(join(tmp, 'volumes'));
  const v = await store.create({ Name: 'app' });
  assert.equal(await store.copyUp('app', join(tmp, 'missing')), false);
  mkdirSync(join(tmp, 'real'));
  writeFileSync(join(tmp, 'real', 'f'), 'f');
  symlinkSync(join(tmp, 'real'), join(tmp, 'link'));
  assert.equal(await store.copyUp('app', join(tmp, 'link')), false);
  writeFileSync(join(tmp, 'file'), 'f');
  assert.equal(await store.copyUp('app', join(tmp, 'file')), false);
  assert.deepEqual(readdirSync(v.Mountpoint), []);
  await assert.rejects(store.copyUp('nope', join(tmp, 'real')), is('NotFound', /no such volume/));
});
