import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BerthError } from '../../errors.js';
import { credentialStoreFrom, defaultDockerConfigPath, loadDockerConfigCredentials } from './credentials.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-credentials-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function configFile(content: unknown): string {
  const file = join(dir, `config-${counter++}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}
const b64 = (s: string): string => Buffer.from(s).toString('base64');

function assertInvalid(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  return assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BerthError, String(err));
    assert.equal(err.code, 'InvalidArgument');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('loadDockerConfigCredentials', () => {
  it('treats a missing file as no credentials', async () => {
    const store = await loadDockerConfigCredentials(join(dir, 'absent', 'config.json'));
    assert.equal(store.get('docker.io'), undefined);
    assert.deepEqual(store.warnings, []);
  });

  it('decodes auth, keeping colons in the password', async () => {
    const file = configFile({ auths: { 'h.lan:5000': { auth: b64('alice:pa:ss:word') } } });
    const store = await loadDockerConfigCredentials(file);
    assert.deepEqual(store.get('h.lan:5000'), { username: 'alice', password: 'pa:ss:word' });
    assert.equal(store.get('h.lan'), undefined);
    assert.equal(store.get('h.lan:5001'), undefined);
    assert.equal(store.file, file);
  });

  it('reads username/password and identitytoken entries', async () => {
    const store = await loadDockerConfigCredentials(
      configFile({
        auths: {
          'a.lan': { username: 'bob', password: 'secret' },
          'b.lan': { auth: b64('<token>:'), identitytoken: 'refresh-me' },
          'c.lan': { auth: '', username: 'carol', password: 'x' },
        },
      }),
    );
    assert.deepEqual(store.get('a.lan'), { username: 'bob', password: 'secret' });
    assert.deepEqual(store.get('b.lan'), { identityToken: 'refresh-me' });
    assert.deepEqual(store.get('c.lan'), { username: 'carol', password: 'x' });
  });

  it('accepts keys written as URLs, with or without a path', async () => {
    const store = await loadDockerConfigCredentials(
      configFile({
        auths: {
          'https://a.lan': { auth: b64('a:1') },
          'http://b.lan:5000/v1/': { auth: b64('b:2') },
          'c.lan/v2/': { auth: b64('c:3') },
        },
      }),
    );
    assert.deepEqual(store.get('a.lan'), { username: 'a', password: '1' });
    assert.deepEqual(store.get('b.lan:5000'), { username: 'b', password: '2' });
    assert.deepEqual(store.get('c.lan'), { username: 'c', password: '3' });
  });

  it('finds Docker Hub credentials under https://index.docker.io/v1/ for every Hub name', async () => {
    const store = await loadDockerConfigCredentials(configFile({ auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } } }));
    for (const domain of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      assert.deepEqual(store.get(domain), { username: 'hub', password: 'pw' }, domain);
    }
  });

  it('prefers the exact key over a URL form of the same host', async () => {
    const store = await loadDockerConfigCredentials(
      configFile({ auths: { 'https://h.lan/v1/': { auth: b64('url:1') }, 'h.lan': { auth: b64('exact:2') } } }),
    );
    assert.deepEqual(store.get('h.lan'), { username: 'exact', password: '2' });
  });

  it('ignores credential helpers but says so', async () => {
    const store = await loadDockerConfigCredentials(
      configFile({
        auths: { 'https://index.docker.io/v1/': {}, 'x.lan': { auth: b64('x:y') } },
        credsStore: 'desktop',
        credHelpers: { 'gcr.io': 'gcloud', '123.dkr.ecr.us-east-1.amazonaws.com': 'ecr-login' },
      }),
    );
    assert.equal(store.get('docker.io'), undefined);
    assert.deepEqual(store.get('x.lan'), { username: 'x', password: 'y' });
    assert.equal(store.warnings.length, 2);
    assert.match(store.warnings[0] ?? '', /"credsStore": "desktop" is not supported/);
    assert.match(store.warnings[1] ?? '', /"credHelpers" is not supported.*gcr\.io/);
  });

  it('accepts a config without auths', async () => {
    const store = await loadDockerConfigCredentials(configFile({ psFormat: 'table' }));
    assert.equal(store.get('docker.io'), undefined);
  });

  it('refuses malformed files, naming the file and the entry', async () => {
    let file = configFile('{"auths": ');
    await assertInvalid(loadDockerConfigCredentials(file), new RegExp(`^${file}: not valid JSON`));
    await assertInvalid(loadDockerConfigCredentials(configFile('[]')), /expected a JSON object/);
    await assertInvalid(loadDockerConfigCredentials(configFile({ auths: [] })), /"auths" must be an object/);
    await assertInvalid(loadDockerConfigCredentials(configFile({ auths: { 'h.lan': 'x' } })), /auths\["h.lan"\]: expected an object/);
    await assertInvalid(loadDockerConfigCredentials(configFile({ auths: { 'h.lan': { auth: '***' } } })), /auths\["h.lan"\]\.auth: not base64/);
    await assertInvalid(loadDockerConfigCredentials(configFile({ auths: { 'h.lan': { auth: b64('nocolon') } } })), /not "username:password"/);
    await assertInvalid(loadDockerConfigCredentials(configFile({ auths: { 'h.lan': { username: 'u' } } })), /a username but no password/);
    await assertInvalid(loadDockerConfigCredentials(configFile({ auths: { 'h.lan': { password: 7 } } })), /auths\["h.lan"\]\.password: expected a string/);
    file = configFile({ auths: { 'h.lan': { auth: b64(':pw') } } });
    await assertInvalid(loadDockerConfigCredentials(file), /not "username:password"/);
  });

  it('reports an unreadable file instead of pretending it is empty', async (t) => {
    if (process.getuid?.() === 0) {
      t.skip('root reads files whatever their mode');
      return;
    }
    const file = configFile({});
    chmodSync(file, 0o000);
    await assert.rejects(loadDockerConfigCredentials(file), (err: unknown) => err instanceof BerthError && err.code === 'FailedPrecondition');
  });

  it('reports a directory where the file should be', async () => {
    const path = join(dir, 'is-a-dir');
    mkdirSync(path);
    await assert.rejects(loadDockerConfigCredentials(path), (err: unknown) => {
      assert.ok(err instanceof BerthError && err.code === 'FailedPrecondition');
      assert.match(err.message, /is-a-dir: EISDIR/);
      return true;
    });
  });
});

describe('defaultDockerConfigPath', () => {
  it('follows DOCKER_CONFIG, else ~/.docker', () => {
    assert.equal(defaultDockerConfigPath({ DOCKER_CONFIG: '/etc/dc' }), '/etc/dc/config.json');
    assert.equal(defaultDockerConfigPath({}), join(homedir(), '.docker', 'config.json'));
  });
});

describe('credentialStoreFrom', () => {
  it('looks entries up by canonical domain', () => {
    const store = credentialStoreFrom({ 'docker.io': { identityToken: 't' }, '127.0.0.1:5000': { username: 'u', password: 'p' } });
    assert.deepEqual(store.get('index.docker.io'), { identityToken: 't' });
    assert.deepEqual(store.get('127.0.0.1:5000'), { username: 'u', password: 'p' });
    assert.equal(store.get('127.0.0.1'), undefined);
  });
});
