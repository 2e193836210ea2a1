import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from '../../errors.js';
import type { ImageIndex, Platform } from '../types.js';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform, selectManifest } from './platform.js';

const d = (n: number): string => `sha256:${String(n).repeat(64).slice(0, 64)}`;
function index(platforms: Platform[]): ImageIndex {
  return {
    schemaVersion: 2,
    manifests: platforms.map((platform, i) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: d(i + 1),
      size: 100,
      platform,
    })),
  };
}

test('hostPlatform maps Node architecture names to OCI names', () => {
  const p = hostPlatform();
  assert.equal(p.os, 'linux');
  const expected: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };
  if (expected[process.arch]) assert.equal(p.architecture, expected[process.arch]);
  if (process.arch === 'arm64') assert.equal(p.variant, 'v8');
  if (process.arch === 'x64') assert.equal(p.variant, undefined);
});

test('parsePlatform reads os/arch[/variant] and normalises spellings', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('Linux/AARCH64'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/armhf'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  for (const bad of ['linux', 'linux/', '/amd64', 'a/b/c/d', 'linux/am d64', '']) {
    assert.throws(() => parsePlatform(bad), (e: unknown) => isBerthError(e, 'InvalidArgument') && /os\/architecture/.test(e.hint ?? ''), bad);
  }
});

test('normalizePlatform fills the default variants', () => {
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm64' }), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'amd64', variant: 'v1' }), { os: 'linux', architecture: 'amd64' });
  assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v6' }), 'linux/arm/v6');
});

test('selectManifest picks the exact os/architecture and treats arm64 without variant as v8', () => {
  const idx = index([
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64' },
    { os: 'windows', architecture: 'amd64' },
    { os: 'unknown', architecture: 'unknown' },
  ]);
  assert.equal(selectManifest(idx, { os: 'linux', architecture: 'amd64' }, 'img').digest, d(1));
  assert.equal(selectManifest(idx, { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'img').digest, d(2));
  assert.equal(selectManifest(idx, { os: 'windows', architecture: 'amd64' }, 'img').digest, d(3));
});

test('selectManifest prefers the exact arm variant and falls back to older ones only', () => {
  const idx = index([
    { os: 'linux', architecture: 'arm', variant: 'v6' },
    { os: 'linux', architecture: 'arm', variant: 'v7' },
  ]);
  assert.equal(selectManifest(idx, parsePlatform('linux/arm/v7'), 'img').digest, d(2));
  assert.equal(selectManifest(idx, parsePlatform('linux/arm/v6'), 'img').digest, d(1));
  const onlyV6 = index([{ os: 'linux', architecture: 'arm', variant: 'v6' }]);
  assert.equal(selectManifest(onlyV6, parsePlatform('linux/arm'), 'img').digest, d(1));
  const onlyV7 = index([{ os: 'linux', architecture: 'arm', variant: 'v7' }]);
  assert.throws(() => selectManifest(onlyV7, parsePlatform('linux/arm/v6'), 'img'), /no image for platform linux\/arm\/v6/);
});

test('selectManifest names the available platforms when nothing matches', () => {
  const idx = index([
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
    { os: 'unknown', architecture: 'unknown' },
  ]);
  assert.throws(
    () => selectManifest(idx, parsePlatform('linux/riscv64'), 'docker.io/library/x:1'),
    (e: unknown) =>
      isBerthError(e, 'NotFound') &&
      e.message === 'docker.io/library/x:1: no image for platform linux/riscv64; the index has linux/amd64, linux/arm64/v8',
  );
  assert.throws(() => selectManifest({ schemaVersion: 2, manifests: [] }, hostPlatform(), 'x'), /no platform-specific images/);
});
