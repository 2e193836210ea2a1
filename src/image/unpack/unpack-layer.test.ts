import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { unpackLayer } from './unpack-layer.js';
import { TarWriter } from './tar.js';

const base = mkdtempSync(join(tmpdir(), 'berth-unpack-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

async function oneFileTar(body: string): Promise<Buffer> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of w) chunks.push(c as Buffer);
  })();
  await w.add({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 }, body);
  await w.finish();
  await done;
  return Buffer.concat(chunks);
}

function dir(): string {
  const d = join(base, String(++n));
  mkdirSync(d);
  return d;
}

test('diffID and size of the uncompressed tar, trailing padding included', async () => {
  const tar = Buffer.concat([await oneFileTar('hello'), Buffer.alloc(9216)]);
  const d = dir();
  const r = await unpackLayer(Readable.from([gzipSync(tar)]), { dir: d, format: 'copy', chown: false });
  assert.deepEqual(r, { diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}`, size: tar.length, entries: 1, bytes: 5 });
  assert.equal(readFileSync(join(d, 'f'), 'utf8'), 'hello');
});

test('a corrupt blob fails naming the layer', async () => {
  const gz = gzipSync(await oneFileTar('hello'));
  await assert.rejects(
    unpackLayer(Readable.from([gz.subarray(0, gz.length - 12)]), { dir: dir(), format: 'copy', chown: false, where: 'layer sha256:feed' }),
    /^BerthError: layer sha256:feed: /,
  );
});
