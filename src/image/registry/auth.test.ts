import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basicAuthorization, parseWwwAuthenticate, repositoryScope } from './auth.js';
import { registryMessage, statusError } from './registry-error.js';
import { isBerthError } from '../../errors.js';

test('parseWwwAuthenticate reads a bearer challenge with quoted commas', () => {
  const [c, ...rest] = parseWwwAuthenticate(
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push"',
  );
  assert.equal(rest.length, 0);
  assert.equal(c!.scheme, 'bearer');
  assert.deepEqual(c!.params, {
    realm: 'https://auth.docker.io/token',
    service: 'registry.docker.io',
    scope: 'repository:library/busybox:pull,push',
  });
});

test('parseWwwAuthenticate reads several challenges, tokens, escapes and odd spacing', () => {
  const cs = parseWwwAuthenticate('Basic realm="a \\"quoted\\", realm" , Bearer realm=https://h/t, service = reg ,error="invalid_token"');
  assert.equal(cs.length, 2);
  assert.deepEqual(cs[0], { scheme: 'basic', params: { realm: 'a "quoted", realm' } });
  assert.deepEqual(cs[1], { scheme: 'bearer', params: { realm: 'https://h/t', service: 'reg', error: 'invalid_token' } });
  assert.deepEqual(parseWwwAuthenticate(''), []);
  assert.deepEqual(parseWwwAuthenticate('Basic'), [{ scheme: 'basic', params: {} }]);
});

test('scopes and basic headers', () => {
  assert.equal(repositoryScope('library/busybox', ['pull', 'push']), 'repository:library/busybox:pull,push');
  assert.equal(basicAuthorization('u', 'p:w'), `Basic ${Buffer.from('u:p:w').toString('base64')}`);
});

test('registryMessage takes errors[] (code, message, detail) or OAuth/Hub fields', () => {
  assert.equal(
    registryMessage('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}'),
    'MANIFEST_UNKNOWN: manifest unknown {"Tag":"x"}',
  );
  assert.equal(registryMessage('{"details":"incorrect username or password"}'), 'incorrect username or password');
  assert.equal(registryMessage('{"error":"invalid_grant","error_description":"bad token"}'), 'bad token');
  assert.equal(registryMessage('<html><body><h1>502 Bad Gateway</h1></body></html>'), '502 Bad Gateway');
  assert.equal(registryMessage(''), '');
});

test('statusError maps statuses to codes with the registry message, operation and request', () => {
  const ctx = { operation: 'pull h:5000/a:b', request: 'GET /v2/a/manifests/b', object: 'manifest' };
  const e401 = statusError(401, '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', ctx);
  assert.ok(isBerthError(e401, 'FailedPrecondition'));
  assert.equal(e401.message, 'unauthorized: UNAUTHORIZED: authentication required (pull h:5000/a:b, GET /v2/a/manifests/b)');
  assert.match(e401.describe(), /docker login/);
  const e404 = statusError(404, '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', ctx);
  assert.ok(isBerthError(e404, 'NotFound'));
  assert.match(e404.message, /^manifest unknown: MANIFEST_UNKNOWN/);
  const e429 = statusError(429, '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}', ctx, '7');
  assert.ok(isBerthError(e429, 'Unavailable'));
  assert.match(e429.message, /^rate limited/);
  assert.match(e429.hint ?? '', /7s/);
  assert.ok(isBerthError(statusError(503, '', ctx), 'Unavailable'));
  assert.ok(isBerthError(statusError(400, '', ctx), 'InvalidArgument'));
});
