// Both snapshotters through the shared conformance suite, plus the overlay mount itself
// (any number of layers through the new mount API, the mount(2) fallback string).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mount, mountOverlay, overlayMountData } from '../src/host/sys.js';
import { createSnapshotter, overlaySupported } from '../src/image/snapshots/snapshotter.js';
import { unmountAll } from '../src/image/snapshots/mount.js';
import { snapshotterSuite } from './snapshotter-suite.js';

const isRoot = process.getuid?.() === 0;

function overlayUnsupported(): string | undefined {
  const probe = mkdtempSync(join(tmpdir(), 'berth-probe-'));
  try {
    return overlaySupported(probe) ? undefined : `overlayfs is not usable under ${tmpdir()}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

snapshotterSuite('overlay', (root) => createSnapshotter(root, 'overlay'), { unsupported: overlayUnsupported });
snapshotterSuite('copy', (root) => createSnapshotter(root, 'copy'));

function withLayers(count: number, fn: (dirs: { lower: string[]; upper: string; work: string; mnt: string }) => void): void {
  const base = mkdtempSync(join(tmpdir(), 'berth-ovl-'));
  const mnt = join(base, 'mnt');
  try {
    const lower: string[] = [];
    for (let i = 0; i < count; i++) {
      // Long names on purpose: 250 of them are far over mount(2)'s one-page option limit.
      const dir = join(base, `lower-layer-with-a-deliberately-long-directory-name-${String(i).padStart(4, '0')}`);
      mkdirSync(dir);
      writeFileSync(join(dir, `f${i}`), String(i));
      writeFileSync(join(dir, 'top'), String(i));
      lower.unshift(dir);
    }
    for (const dir of ['upper', 'work', 'mnt']) mkdirSync(join(base, dir));
    fn({ lower, upper: join(base, 'upper'), work: join(base, 'work'), mnt });
  } finally {
    unmountAll(mnt);
    rmSync(base, { recursive: true, force: true });
  }
}

test('mountOverlay: 2 lower layers, writable', { skip: isRoot ? overlayUnsupported() ?? false : 'needs root' }, () => {
  withLayers(2, ({ lower, upper, work, mnt }) => {
    mountOverlay(mnt, { lower, upper, work });
    assert.deepEqual(readdirSync(mnt).sort(), ['f0', 'f1', 'top']);
    assert.equal(readFileSync(join(mnt, 'top'), 'utf8'), '1');
    writeFileSync(join(mnt, 'new'), 'x');
    assert.deepEqual(readdirSync(upper), ['new']);
  });
});

test('mountOverlay: 250 lower layers (over the one-page option limit), read-only', { skip: isRoot ? overlayUnsupported() ?? false : 'needs root' }, () => {
  withLayers(250, ({ lower, mnt }) => {
    assert.ok(lower.join(':').length > 4096);
    mountOverlay(mnt, { lower, options: ['ro'] });
    assert.equal(readdirSync(mnt).length, 251);
    assert.equal(readFileSync(join(mnt, 'top'), 'utf8'), '249');
    assert.throws(() => writeFileSync(join(mnt, 'new'), 'x'), { code: 'EROFS' });
  });
});

test('the mount(2) fallback option string mounts the same overlay', { skip: isRoot ? overlayUnsupported() ?? false : 'needs root' }, () => {
  withLayers(3, ({ lower, upper, work, mnt }) => {
    mount('overlay', mnt, 'overlay', 0, overlayMountData(mnt, { lower, upper, work }));
    assert.equal(readFileSync(join(mnt, 'top'), 'utf8'), '2');
    assert.equal(readdirSync(mnt).length, 4);
  });
});

test("createSnapshotter 'auto' picks overlay where it works", { skip: isRoot ? false : 'needs root' }, () => {
  const root = mkdtempSync(join(tmpdir(), 'berth-auto-'));
  try {
    const expected = overlayUnsupported() === undefined ? 'overlay' : 'copy';
    assert.equal(createSnapshotter(root).kind, expected);
    assert.deepEqual(readdirSync(root), [expected], 'the probe leaves nothing behind');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
