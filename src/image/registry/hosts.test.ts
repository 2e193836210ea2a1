import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../../errors.js';
import { canonicalDomain, isLoopback, resolveEndpoints, type RegistryEndpoint } from './hosts.js';

const origin = (domain: string, baseUrl: string, insecure = false): RegistryEndpoint => ({ domain, baseUrl, mirror: false, insecure });
const mirror = (domain: string, baseUrl: string, insecure = false): RegistryEndpoint => ({ domain, baseUrl, mirror: true, insecure });

describe('resolveEndpoints', () => {
  it('sends Docker Hub to registry-1.docker.io', () => {
    assert.deepEqual(resolveEndpoints('docker.io'), [origin('docker.io', 'https://registry-1.docker.io')]);
    assert.deepEqual(resolveEndpoints('index.docker.io'), [origin('docker.io', 'https://registry-1.docker.io')]);
  });

  it('uses https for other registries', () => {
    assert.deepEqual(resolveEndpoints('quay.io'), [origin('quay.io', 'https://quay.io')]);
    assert.deepEqual(resolveEndpoints('h.example:5000'), [origin('h.example:5000', 'https://h.example:5000')]);
  });

  it('uses plain http for loopback hosts on any port', () => {
    for (const domain of ['localhost', 'localhost:5000', '127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', '[::1]', '[::1]:5000']) {
      assert.deepEqual(resolveEndpoints(domain), [origin(domain, `http://${domain}`, true)], domain);
    }
  });

  it('uses plain http only for exactly the insecure hosts named', () => {
    const config = { insecure: ['reg.lan:5000', 'http://other.lan/', 'UPPER.lan'] };
    assert.deepEqual(resolveEndpoints('reg.lan:5000', config), [origin('reg.lan:5000', 'http://reg.lan:5000', true)]);
    assert.deepEqual(resolveEndpoints('other.lan', config), [origin('other.lan', 'http://other.lan', true)]);
    assert.deepEqual(resolveEndpoints('upper.lan', config), [origin('upper.lan', 'http://upper.lan', true)]);
    // Same host on another port, or without the port, is not the registry that was named.
    assert.deepEqual(resolveEndpoints('reg.lan', config), [origin('reg.lan', 'https://reg.lan')]);
    assert.deepEqual(resolveEndpoints('reg.lan:5001', config), [origin('reg.lan:5001', 'https://reg.lan:5001')]);
  });

  it('lists mirrors first, in order, for any registry', () => {
    const config = {
      mirrors: {
        'docker.io': ['https://mirror.gcr.io', 'm2.lan:5000', 'http://m3.lan/v2/', 'https://m4.lan/prefix/'],
        'quay.io': ['127.0.0.1:5001'],
      },
    };
    assert.deepEqual(resolveEndpoints('docker.io', config), [
      mirror('mirror.gcr.io', 'https://mirror.gcr.io'),
      mirror('m2.lan:5000', 'https://m2.lan:5000'),
      mirror('m3.lan', 'http://m3.lan', true),
      mirror('m4.lan', 'https://m4.lan/prefix'),
      origin('docker.io', 'https://registry-1.docker.io'),
    ]);
    assert.deepEqual(resolveEndpoints('quay.io', config), [
      mirror('127.0.0.1:5001', 'http://127.0.0.1:5001', true),
      origin('quay.io', 'https://quay.io'),
    ]);
    assert.deepEqual(resolveEndpoints('ghcr.io', config), [origin('ghcr.io', 'https://ghcr.io')]);
  });

  it('finds Docker Hub mirrors under any of its names', () => {
    const config = { mirrors: { 'index.docker.io': ['m.lan'] } };
    assert.equal(resolveEndpoints('docker.io', config)[0]?.baseUrl, 'https://m.lan');
  });

  it('reaches a mirror host[:port] over http when it is insecure, but keeps an explicit https', () => {
    const config = { mirrors: { 'docker.io': ['m.lan:5000', 'https://n.lan'] }, insecure: ['m.lan:5000', 'n.lan'] };
    assert.deepEqual(resolveEndpoints('docker.io', config).slice(0, 2), [
      mirror('m.lan:5000', 'http://m.lan:5000', true),
      mirror('n.lan', 'https://n.lan'),
    ]);
  });

  it('drops duplicate mirrors and a mirror that is the registry itself', () => {
    const config = { mirrors: { 'r.lan': ['a.lan', 'https://a.lan/', 'https://r.lan'] } };
    assert.deepEqual(resolveEndpoints('r.lan', config), [mirror('a.lan', 'https://a.lan'), origin('r.lan', 'https://r.lan')]);
  });

  it('accepts IPv6 mirrors', () => {
    const config = { mirrors: { 'docker.io': ['[::1]:5000', 'https://[2001:db8::1]:443'] } };
    assert.deepEqual(resolveEndpoints('docker.io', config).slice(0, 2), [
      mirror('[::1]:5000', 'http://[::1]:5000', true),
      mirror('[2001:db8::1]', 'https://[2001:db8::1]'),
    ]);
  });

  it('refuses malformed configuration, naming the entry', () => {
    const cases: Array<[Parameters<typeof resolveEndpoints>[1], RegExp]> = [
      [{ mirrors: { 'docker.io': ['ftp://m.lan'] } }, /mirrors\["docker.io"\]\[0\]: "ftp:\/\/m.lan" must use http or https/],
      [{ mirrors: { 'docker.io': ['https://u:p@m.lan'] } }, /mirrors\["docker.io"\]\[0\].*credentials/],
      [{ mirrors: { 'docker.io': ['ok.lan', 'bad host'] } }, /mirrors\["docker.io"\]\[1\]: "bad host" is not a URL/],
      [{ mirrors: { 'docker.io': 'm.lan' as unknown as string[] } }, /mirrors\["docker.io"\]: expected a list/],
      [{ insecure: ['a.lan', 'h.lan/path'] }, /insecure\[1\]: "h.lan\/path" is not a host/],
      [{ insecure: [''] }, /insecure\[0\]/],
    ];
    for (const [config, message] of cases) {
      assert.throws(() => resolveEndpoints('docker.io', config), (err: unknown) => {
        assert.ok(err instanceof BerthError && err.code === 'InvalidArgument');
        assert.match(err.message, message);
        return true;
      });
    }
  });
});

describe('host helpers', () => {
  it('canonicalDomain folds Docker Hub names and case', () => {
    assert.equal(canonicalDomain('registry-1.docker.io'), 'docker.io');
    assert.equal(canonicalDomain('Index.Docker.io'), 'docker.io');
    assert.equal(canonicalDomain('H.lan:5000'), 'h.lan:5000');
  });

  it('isLoopback', () => {
    for (const h of ['localhost', 'localhost:1', '127.0.0.1', '127.255.255.254:9', '[::1]', '[::1]:5000']) assert.ok(isLoopback(h), h);
    for (const h of ['localhost.lan', '128.0.0.1', '127.0.0', '127.0.0.256', '[::2]:5000', 'docker.io']) assert.ok(!isLoopback(h), h);
  });
});
