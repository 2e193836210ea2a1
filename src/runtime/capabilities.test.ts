import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBerthError } from '../errors.js';
import {
  CAPABILITIES,
  CAP_LAST,
  DEFAULT_CAPABILITIES,
  capabilityMask,
  capabilityNames,
  capabilityNumber,
  clampToKernel,
  lastCap,
} from './capabilities.js';

test('the table has Linux numbering from CAP_CHOWN=0 to CAP_CHECKPOINT_RESTORE=40', () => {
  assert.equal(CAPABILITIES[0], 'CAP_CHOWN');
  assert.equal(capabilityNumber('CAP_NET_ADMIN'), 12);
  assert.equal(capabilityNumber('CAP_SYS_ADMIN'), 21);
  assert.equal(capabilityNumber('CAP_AUDIT_WRITE'), 29);
  assert.equal(capabilityNumber('CAP_SETFCAP'), 31);
  assert.equal(capabilityNumber('CAP_BPF'), 39);
  assert.equal(CAP_LAST, 40);
  assert.equal(CAPABILITIES[CAP_LAST], 'CAP_CHECKPOINT_RESTORE');
  assert.equal(new Set(CAPABILITIES).size, CAPABILITIES.length);
});

test('capabilityMask sets one bit per name, case-insensitively', () => {
  assert.equal(capabilityMask([], 'p'), 0n);
  assert.equal(capabilityMask(['CAP_CHOWN', 'cap_kill', 'Cap_Checkpoint_Restore'], 'p'), (1n << 0n) | (1n << 5n) | (1n << 40n));
  assert.equal(capabilityMask(['CAP_KILL', 'CAP_KILL'], 'p'), 1n << 5n);
});

test('capabilityMask names the path and the unknown capability', () => {
  assert.throws(
    () => capabilityMask(['CAP_CHOWN', 'CAP_FLY'], 'process.capabilities.bounding'),
    (err: unknown) =>
      isBerthError(err, 'InvalidArgument') && err.message === 'process.capabilities.bounding[1]: unknown capability "CAP_FLY"',
  );
  assert.throws(
    () => capabilityMask(['NET_ADMIN'], 'process.capabilities.effective'),
    (err: unknown) =>
      isBerthError(err, 'InvalidArgument') &&
      err.message.startsWith('process.capabilities.effective[0]:') &&
      err.hint === 'write it with the prefix: "CAP_NET_ADMIN"',
  );
});

test('capabilityNames is the inverse of capabilityMask', () => {
  const mask = capabilityMask(DEFAULT_CAPABILITIES, 'p');
  assert.deepEqual(capabilityNames(mask), [...DEFAULT_CAPABILITIES].sort((a, b) => capabilityNumber(a)! - capabilityNumber(b)!));
  assert.deepEqual(capabilityNames(0n), []);
  assert.deepEqual(capabilityNames((1n << 42n) | 1n), ['CAP_CHOWN', 'CAP_42']);
});

test('DEFAULT_CAPABILITIES is Docker\'s set of 14', () => {
  assert.equal(DEFAULT_CAPABILITIES.length, 14);
  for (const c of DEFAULT_CAPABILITIES) assert.notEqual(capabilityNumber(c), undefined, c);
  assert.ok(!DEFAULT_CAPABILITIES.includes('CAP_SYS_ADMIN'));
});

test('lastCap reads cap_last_cap under the given /proc root', () => {
  const root = mkdtempSync(join(tmpdir(), 'berth-caps-'));
  try {
    mkdirSync(join(root, 'sys/kernel'), { recursive: true });
    writeFileSync(join(root, 'sys/kernel/cap_last_cap'), '37\n');
    assert.equal(lastCap(root), 37);
    writeFileSync(join(root, 'sys/kernel/cap_last_cap'), 'garbage\n');
    assert.throws(() => lastCap(root), (err: unknown) => isBerthError(err, 'Internal'));
    rmSync(join(root, 'sys'), { recursive: true });
    assert.throws(() => lastCap(root), (err: unknown) => isBerthError(err, 'Unavailable') && err.message.includes('cap_last_cap'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('clampToKernel drops capabilities above the kernel\'s last', () => {
  const all = capabilityMask(CAPABILITIES, 'p');
  assert.deepEqual(capabilityNames(clampToKernel(all, 37)).at(-1), 'CAP_AUDIT_READ');
  assert.equal(clampToKernel(all, 40), all);
  assert.equal(clampToKernel(1n << 5n, 37), 1n << 5n);
  assert.equal(clampToKernel(0n, 0), 0n);
});
