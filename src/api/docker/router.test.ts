import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../../errors.js';
import { compareApiVersions, splitVersion } from './api-version.js';
import { frame, parseFrames } from './frames.js';
import { queryBool, queryFilters, queryInt, queryTime } from './request.js';
import { Router, type Route } from './router.js';
import { dockerApiRoutes } from './server.js';
import { unsupportedMessage } from './unsupported.js';
import { checkCreateContainer, checkExecStart } from './validate.js';

describe('router', () => {
  const router = new Router(dockerApiRoutes);
  const found = (method: string, path: string): { pattern: string; params: Record<string, string> } => {
    const m = router.match(method, path);
    assert.equal(m.kind, 'found', `${method} ${path}`);
    return m.kind === 'found' ? { pattern: m.route.pattern, params: m.params } : { pattern: '', params: {} };
  };

  it('prefers fixed paths over patterns', () => {
    assert.equal(found('GET', '/containers/json').pattern, '/containers/json');
    assert.equal(found('GET', '/images/json').pattern, '/images/json');
    assert.equal(found('GET', '/images/get').pattern, '/images/get');
    assert.equal(found('POST', '/volumes/prune').pattern, '/volumes/prune');
  });

  it('matches image names of any depth, decoding escapes', () => {
    assert.deepEqual(found('GET', '/images/localhost:5000/team/app:v1/json').params, { name: 'localhost:5000/team/app:v1' });
    assert.deepEqual(found('GET', '/images/json/json').params, { name: 'json' });
    assert.deepEqual(found('DELETE', '/images/a/b/c').params, { name: 'a/b/c' });
    assert.deepEqual(found('POST', '/images/a%2Fb/tag').params, { name: 'a/b' });
    assert.deepEqual(found('GET', '/images/x@sha256:abc/history').params, { name: 'x@sha256:abc' });
  });

  it('tells a wrong method from an unknown path', () => {
    assert.equal(router.match('PUT', '/containers/json').kind, 'method-not-allowed');
    assert.equal(router.match('GET', '/nope').kind, 'not-found');
    assert.equal(router.match('GET', '/images/%E0%A4%A/json').kind, 'not-found');
  });

  it('matches a custom table', () => {
    const handle = async (): Promise<void> => undefined;
    const r = new Router([{ method: 'GET', pattern: '/a/{x*}/b/{y}', handle } satisfies Route]);
    const m = r.match('GET', '/a/1/2/b/3');
    assert.deepEqual(m.kind === 'found' ? m.params : null, { x: '1/2', y: '3' });
  });

  it('knows what it does not implement', () => {
    assert.match(unsupportedMessage('POST', '/build') ?? '', /^berth does not implement POST \/build: the image builder comes later/);
    assert.equal(unsupportedMessage('POST', '/build/prune'), null);
    assert.equal(unsupportedMessage('GET', '/volumes/x'), null);
    assert.equal(unsupportedMessage('PUT', '/volumes/x'), 'berth does not implement PUT /volumes/x: cluster volumes need swarm');
  });
});

describe('API versions', () => {
  it('compares numerically', () => {
    assert.equal(compareApiVersions('1.9', '1.10'), -1);
    assert.equal(compareApiVersions('1.47', '1.47'), 0);
    assert.equal(compareApiVersions('2.0', '1.47'), 1);
  });

  it('splits the prefix and checks the range', () => {
    assert.deepEqual(splitVersion('/v1.41/containers/json'), { version: '1.41', path: '/containers/json' });
    assert.deepEqual(splitVersion('/containers/json'), { version: '1.47', path: '/containers/json' });
    assert.throws(() => splitVersion('/v1.48/info'), (e: unknown) => e instanceof BerthError && e.code === 'InvalidArgument');
    assert.throws(() => splitVersion('/v1.40/info'), /too old/);
  });
});

describe('query parameters', () => {
  const q = (s: string): URLSearchParams => new URLSearchParams(s);

  it('reads booleans as Go does', () => {
    for (const v of ['1', 'true', 'True', 'yes', 'anything']) assert.equal(queryBool(q(`a=${v}`), 'a'), true, v);
    for (const v of ['0', 'false', 'no', 'none']) assert.equal(queryBool(q(`a=${v}`), 'a', true), false, v);
    assert.equal(queryBool(q('a='), 'a', true), true);
    assert.equal(queryBool(q(''), 'a'), false);
  });

  it('reads integers and timestamps strictly', () => {
    assert.equal(queryInt(q('t=-1'), 't'), -1);
    assert.equal(queryInt(q('t='), 't'), undefined);
    assert.throws(() => queryInt(q('t=1.5'), 't'), /"t"/);
    assert.equal(queryTime(q('since=1700000000.123456789'), 'since'), 1700000000.123456789);
    assert.throws(() => queryTime(q('since=10m'), 'since'), /Unix timestamp/);
  });

  it('reads filters in both shapes', () => {
    assert.deepEqual(queryFilters(q('filters=' + encodeURIComponent('{"a":["x","y"],"b":{"z":true}}'))), { a: ['x', 'y'], b: ['z'] });
    assert.deepEqual(queryFilters(q('filters=')), {});
    assert.throws(() => queryFilters(q('filters=' + encodeURIComponent('{"a":1}'))), /"a"/);
    assert.throws(() => queryFilters(q('filters=' + encodeURIComponent('[1]'))), /expected a JSON object/);
  });
});

describe('body checks', () => {
  it('names the field with the wrong type', () => {
    assert.throws(() => checkCreateContainer({ Image: 'x', Tty: 'yes' }), /Tty must be a boolean, got string "yes"/);
    assert.throws(() => checkCreateContainer({ Image: 'x', HostConfig: { Mounts: [{ Type: 'bind', Target: 1 }] } }), /HostConfig\.Mounts\[0\]\.Target must be a string/);
    assert.throws(() => checkCreateContainer({ Image: 'x', HostConfig: { NanoCpus: 1.5 } }), /HostConfig\.NanoCpus must be an integer, got fractional number 1\.5/);
    assert.throws(() => checkCreateContainer({ Image: 'x', Labels: { a: 1 } }), /Labels\.a must be a string/);
    assert.throws(() => checkCreateContainer({ Image: 'x', Healthcheck: { Interval: '1s' } }), /Healthcheck\.Interval must be an integer/);
    assert.throws(() => checkExecStart({ ConsoleSize: [1] }), /ConsoleSize/);
  });

  it('accepts nulls and unknown fields, and a string Cmd', () => {
    const req = checkCreateContainer({ Image: 'x', Cmd: 'sh', Entrypoint: null, Unknown: 5, HostConfig: { Binds: null, Future: true } });
    assert.deepEqual(req, { Image: 'x', Cmd: ['sh'], Entrypoint: null, Unknown: 5, HostConfig: { Binds: null, Future: true } } as unknown as typeof req);
  });
});

describe('frames', () => {
  it('round-trips and keeps a partial tail', () => {
    const data = Buffer.concat([frame(1, Buffer.from('a')), frame(2, Buffer.from('bc')), frame(1, Buffer.from('def')).subarray(0, 9)]);
    const { frames, rest } = parseFrames(data);
    assert.deepEqual(frames.map((f) => [f.stream, f.payload.toString()]), [[1, 'a'], [2, 'bc']]);
    assert.equal(rest.length, 9);
    assert.deepEqual([...frame(2, Buffer.alloc(300)).subarray(0, 8)], [2, 0, 0, 0, 0, 0, 1, 44]);
  });
});
