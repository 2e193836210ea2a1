import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeConfig, processEnv, replaceOrAppendEnv, commandOf } from './merge.js';

const image = {
  Entrypoint: ['/entry.sh'],
  Cmd: ['serve'],
  Env: ['PATH=/opt/bin:/usr/bin', 'A=image'],
  WorkingDir: '/srv',
  User: 'app',
  Labels: { a: '1', b: '1' },
  ExposedPorts: { '80/tcp': {} },
  Volumes: { '/data': {} },
  StopSignal: 'SIGQUIT',
  Healthcheck: { Test: ['CMD', 'true'], Interval: 5e9, Retries: 3 },
};

test('the image fills what the request leaves out', () => {
  const c = mergeConfig({ Image: 'x' }, image);
  assert.deepEqual(commandOf(c), ['/entry.sh', 'serve']);
  assert.equal(c.WorkingDir, '/srv');
  assert.equal(c.User, 'app');
  assert.equal(c.StopSignal, 'SIGQUIT');
  assert.deepEqual(c.Env, image.Env);
  assert.deepEqual(c.Volumes, { '/data': {} });
});

test('a request Cmd keeps the image Entrypoint; a request Entrypoint drops the image Cmd', () => {
  assert.deepEqual(commandOf(mergeConfig({ Cmd: ['x'] }, image)), ['/entry.sh', 'x']);
  assert.deepEqual(commandOf(mergeConfig({ Entrypoint: ['/bin/sh'] }, image)), ['/bin/sh']);
  assert.deepEqual(commandOf(mergeConfig({ Entrypoint: ['/bin/sh'], Cmd: ['-c', 'true'] }, image)), ['/bin/sh', '-c', 'true']);
  // `--entrypoint ""` resets it: nothing to run unless a Cmd is given.
  assert.deepEqual(commandOf(mergeConfig({ Entrypoint: [''] }, image)), []);
  assert.deepEqual(commandOf(mergeConfig({ Entrypoint: [], Cmd: ['ls'] }, image)), ['ls']);
});

test('Env keeps the request entries first and appends the image keys it does not set', () => {
  const c = mergeConfig({ Env: ['A=req', 'B=2'] }, image);
  assert.deepEqual(c.Env, ['A=req', 'B=2', 'PATH=/opt/bin:/usr/bin']);
});

test('Labels, ports and volumes are unions with the request winning', () => {
  const c = mergeConfig({ Labels: { b: '2', c: '3' }, ExposedPorts: { '53/udp': {} }, Volumes: { '/logs': {} } }, image);
  assert.deepEqual(c.Labels, { a: '1', b: '2', c: '3' });
  assert.deepEqual(Object.keys(c.ExposedPorts!).sort(), ['53/udp', '80/tcp']);
  assert.deepEqual(Object.keys(c.Volumes!).sort(), ['/data', '/logs']);
});

test('a Healthcheck inherits the fields it leaves zero', () => {
  const c = mergeConfig({ Healthcheck: { Timeout: 1e9 } }, image);
  assert.deepEqual(c.Healthcheck, { Test: ['CMD', 'true'], Interval: 5e9, Timeout: 1e9, Retries: 3 });
});

test('HostConfig is not part of the merged Config', () => {
  const c = mergeConfig({ Cmd: ['x'], HostConfig: { Memory: 1 } }, undefined);
  assert.equal('HostConfig' in c, false);
  assert.deepEqual(c.Labels, {});
});

test('process env: defaults, then Env replacing in place; NAME without "=" unsets', () => {
  assert.deepEqual(replaceOrAppendEnv(['A=1', 'B=2'], ['B=3', 'C=4', 'A']), ['B=3', 'C=4']);
  const env = processEnv({ Env: ['PATH=/x', 'FOO=bar'] }, { hostname: 'h', tty: true, home: '/root' });
  assert.deepEqual(env, ['PATH=/x', 'HOSTNAME=h', 'TERM=xterm', 'FOO=bar', 'HOME=/root']);
  const env2 = processEnv({ Env: ['HOME=/mine'] }, { hostname: 'h', tty: false, home: '/root' });
  assert.deepEqual(env2, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=h', 'HOME=/mine']);
});
