import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from '../../errors.js';
import { DEFAULT_DETACH_KEYS, DetachScanner, parseDetachKeys } from './io.js';

test('parseDetachKeys: Docker’s syntax', () => {
  assert.deepEqual(parseDetachKeys(undefined), DEFAULT_DETACH_KEYS);
  assert.deepEqual(parseDetachKeys(''), Buffer.from([16, 17]));
  assert.deepEqual(parseDetachKeys('ctrl-p,ctrl-q'), Buffer.from([16, 17]));
  assert.deepEqual(parseDetachKeys('ctrl-a,x'), Buffer.from([1, 0x78]));
  assert.deepEqual(parseDetachKeys('CTRL-Z'), Buffer.from([26]));
  assert.deepEqual(parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_'), Buffer.from([0, 27, 28, 29, 30, 31]));
  for (const bad of ['ctrl-1', 'ctrl-', 'ctrl-p,', 'alt-x', 'xy', 'é'])
    assert.throws(() => parseDetachKeys(bad), (e) => isBerthError(e, 'InvalidArgument') && e.message.startsWith(`Invalid detach keys (${bad}) provided`), bad);
});

test('DetachScanner: the sequence is swallowed, a broken start is let through', () => {
  const keys = Buffer.from([16, 17]);
  const s = new DetachScanner(keys);
  assert.deepEqual(s.push(Buffer.from('abc')), { forward: Buffer.from('abc'), detached: false });
  // ctrl-p held back until the next byte tells.
  assert.deepEqual(s.push(Buffer.from([0x61, 16])), { forward: Buffer.from('a'), detached: false });
  assert.deepEqual(s.push(Buffer.from('b')), { forward: Buffer.from([16, 0x62]), detached: false });
  // ctrl-p ctrl-p ctrl-q: the first is data, the next two detach.
  assert.deepEqual(s.push(Buffer.from([16, 16, 17, 0x7a])), { forward: Buffer.from([16]), detached: true });
  const split = new DetachScanner(keys);
  assert.equal(split.push(Buffer.from([0x6c, 0x73, 16])).detached, false);
  assert.deepEqual(split.push(Buffer.from([17])), { forward: Buffer.alloc(0), detached: true });
  const one = new DetachScanner(Buffer.from([3]));
  assert.deepEqual(one.push(Buffer.from([0x41, 3])), { forward: Buffer.from('A'), detached: true });
});
