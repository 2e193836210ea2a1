import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { decompress, detectCompression } from './decompress.js';

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function pieces(buf: Buffer, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
    })(),
    { objectMode: false },
  );
}

const haveZstd = spawnSync('zstd', ['--version']).status === 0;

function zstd(buf: Buffer): Buffer {
  const r = spawnSync('zstd', ['-c', '-q'], { input: buf, maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

// Compressible but not trivial: text with random parts.
const plain = Buffer.concat(Array.from({ length: 2000 }, (_, i) => Buffer.from(`line ${i} ${randomBytes(8).toString('hex')}\n`)));

test('magic detection', () => {
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  assert.equal(detectCompression(Buffer.from('ustar')), 'none');
  assert.equal(detectCompression(Buffer.alloc(0)), 'none');
});

test('plain data passes through, even when split into 1-byte first chunks', async () => {
  assert.deepEqual(await collect(decompress(pieces(plain, 1000))), plain);
  const tiny = Buffer.concat([Buffer.from([1]), Buffer.from([2]), Buffer.from([3]), Buffer.from('rest')]);
  assert.deepEqual(await collect(decompress(pieces(tiny, 1))), tiny);
  assert.deepEqual(await collect(decompress(Readable.from([], { objectMode: false }))), Buffer.alloc(0));
});

test('gzip, whatever the media type says; the magic split across chunks', async () => {
  const gz = gzipSync(plain);
  assert.deepEqual(await collect(decompress(pieces(gz, 1), 'application/vnd.oci.image.layer.v1.tar')), plain);
  assert.deepEqual(await collect(decompress(pieces(gz, 4096), { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' })), plain);
});

test('gzip with several members (pigz, concatenated files)', async () => {
  const gz = Buffer.concat([gzipSync(plain.subarray(0, 1000)), gzipSync(plain.subarray(1000))]);
  assert.deepEqual(await collect(decompress(pieces(gz, 777))), plain);
});

test('corrupt gzip fails with the layer named', async () => {
  const gz = gzipSync(plain);
  const mid = Math.floor(gz.length / 2);
  gz[mid] ^= 0xff;
  gz[mid + 1] ^= 0xff;
  await assert.rejects(collect(decompress(pieces(gz, 4096), { where: 'layer sha256:abc' })), (err: Error & { code?: string }) => {
    assert.match(err.message, /^layer sha256:abc: gzip data is corrupt/);
    assert.equal(err.code, 'InvalidArgument');
    return true;
  });
});

test('zstd through the zstd binary', async (t) => {
  if (!haveZstd) return t.skip('zstd is not installed (Debian package zstd)');
  assert.deepEqual(await collect(decompress(pieces(zstd(plain), 1000))), plain);
});

test('corrupt zstd fails with zstd\'s own message', async (t) => {
  if (!haveZstd) return t.skip('zstd is not installed (Debian package zstd)');
  const z = zstd(plain);
  const bad = Buffer.concat([z.subarray(0, 20), Buffer.alloc(200, 0x42)]);
  await assert.rejects(collect(decompress(pieces(bad, 64), { where: 'layer sha256:def' })), (err: Error & { code?: string }) => {
    assert.match(err.message, /^layer sha256:def: zstd data is corrupt: .+/);
    assert.equal(err.code, 'InvalidArgument');
    return true;
  });
});

test('a missing zstd binary says which package to install', async () => {
  const z = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
  await assert.rejects(collect(decompress(pieces(z, 64), { where: 'layer x', zstdPath: '/nonexistent/zstd' })), (err: Error & { code?: string; hint?: string }) => {
    assert.equal(err.code, 'FailedPrecondition');
    assert.match(err.message, /zstd-compressed but "\/nonexistent\/zstd" is not installed/);
    assert.match(err.hint ?? '', /zstd/);
    return true;
  });
});

test('abort stops the work (and zstd)', async (t) => {
  for (const kind of ['gzip', 'zstd'] as const) {
    if (kind === 'zstd' && !haveZstd) {
      t.diagnostic('zstd not installed: zstd abort not checked');
      continue;
    }
    const ac = new AbortController();
    // An endless source: only the abort can end this.
    const head = kind === 'gzip' ? gzipSync(plain) : zstd(plain);
    let i = 0;
    const src = new Readable({
      read() {
        this.push(i++ === 0 ? head.subarray(0, 100) : Buffer.alloc(0));
        if (i > 1) setTimeout(() => this.push(null), 60_000).unref();
      },
    });
    const out = decompress(src, { signal: ac.signal });
    out.resume();
    setTimeout(() => ac.abort(new Error('stop now')), 50);
    await assert.rejects(new Promise((resolve, reject) => out.on('end', resolve).on('error', reject)), /stop now/);
    assert.ok(src.destroyed, `${kind}: the source is destroyed`);
  }
});
