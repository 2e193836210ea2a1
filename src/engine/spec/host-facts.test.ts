import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readHostDevices, splitDev } from './host-facts.js';

test('splitDev decodes glibc dev_t encodings', () => {
  assert.deepEqual(splitDev(0x103n), { major: 1, minor: 3 });
  assert.deepEqual(splitDev(0x800n), { major: 8, minor: 0 });
  // major 259 and minor 300 need the high bits
  const dev = (259n & 0xfffn) << 8n | (300n & 0xffn) | ((300n & ~0xffn) << 12n);
  assert.deepEqual(splitDev(dev), { major: 259, minor: 300 });
});

test('readHostDevices looks up /dev/null and refuses non-devices', (t) => {
  if (!existsSync('/dev/null')) return t.skip('no /dev/null on this host');
  const devs = readHostDevices();
  assert.deepEqual(devs.lookup('/dev/null').map((d) => [d.type, d.major, d.minor]), [['c', 1, 3]]);
  assert.throws(() => devs.lookup('/etc/hostname'), /is not a device node/);
  assert.throws(() => devs.lookup('/nonexistent/dev'), /error gathering device information/);
  const all = devs.all();
  assert.ok(all.some((d) => d.path === '/dev/null'));
  assert.ok(!all.some((d) => d.path.startsWith('/dev/pts/') || d.path === '/dev/ptmx' || d.path === '/dev/console'));
});
