// Layer extraction throughput: berth's unpackLayer against GNU tar on the same gzip layers,
// one at a time and all layers at once. Prints numbers only (times on shared machines are
// noise; compare the ratio). Usage: node dist/bench/unpack.js [totalMiB=500] [layers=5]
import { createWriteStream, createReadStream, mkdtempSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { TarWriter } from '../src/image/unpack/tar.js';
import { unpackLayer } from '../src/image/unpack/unpack-layer.js';

const totalMiB = Number(process.argv[2] ?? 500);
const layerCount = Number(process.argv[3] ?? 5);
const work = mkdtempSync(join(tmpdir(), 'berth-bench-unpack-'));

/** Half random, half text: gzip ratio near real binaries. */
function content(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  randomBytes(Math.ceil(size / 2)).copy(b);
  b.fill('the quick brown fox jumps over the lazy dog\n', Math.ceil(size / 2));
  return b;
}

async function makeLayer(file: string, bytes: number, seed: number): Promise<number> {
  const w = new TarWriter();
  const done = pipeline(w, createGzip({ level: 1 }), createWriteStream(file));
  let left = bytes;
  let i = 0;
  const big = content(8 * 1024 * 1024);
  while (left > 0) {
    const dir = `l${seed}/d${Math.floor(i / 200)}`;
    if (i % 200 === 0) await w.add({ name: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1_700_000_000 });
    // Mostly small files, every 500th a big one: like a distro layer.
    const size = Math.min(left, i % 500 === 499 ? 8 * 1024 * 1024 : 1024 + ((i * 7919) % 30_000));
    await w.add({ name: `${dir}/f${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 1_700_000_000 }, big.subarray(0, size));
    left -= size;
    i++;
  }
  await w.finish();
  await done;
  return i;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });
}

async function time(label: string, fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${label.padEnd(44)} ${s.toFixed(2)} s  (${(totalMiB / s).toFixed(0)} MiB/s)`);
  return s;
}

async function main(): Promise<void> {
  const blobs: string[] = [];
  let files = 0;
  for (let l = 0; l < layerCount; l++) {
    const blob = join(work, `layer${l}.tar.gz`);
    files += await makeLayer(blob, Math.floor((totalMiB * 1024 * 1024) / layerCount), l);
    blobs.push(blob);
  }
  const gz = blobs.reduce((n, b) => n + statSync(b).size, 0);
  console.log(`${layerCount} layers, ${totalMiB} MiB uncompressed, ${(gz / 2 ** 20).toFixed(0)} MiB gzip, ${files} files`);
  const fresh = (name: string): string[] => blobs.map((_, i) => {
    const d = join(work, name, String(i));
    mkdirSync(d, { recursive: true });
    return d;
  });
  // Nothing is deleted until the end: on this ext4 (mounted with discard) deleting thousands
  // of files slows the file creation of whatever runs next.

  const tar1 = fresh('tar1');
  const tarSeq = await time('GNU tar -xzf, one layer after another', async () => {
    for (let i = 0; i < blobs.length; i++) await run('tar', ['-xzf', blobs[i]!, '-C', tar1[i]!]);
  });
  const b1 = fresh('berth1');
  const berthSeq = await time('berth unpackLayer, one after another', async () => {
    for (let i = 0; i < blobs.length; i++) await unpackLayer(createReadStream(blobs[i]!), { dir: b1[i]!, format: 'overlay' });
  });
  const tar2 = fresh('tar2');
  const tarPar = await time('GNU tar -xzf, all layers at once', () =>
    Promise.all(blobs.map((b, i) => run('tar', ['-xzf', b, '-C', tar2[i]!]))),
  );
  const b2 = fresh('berth2');
  const berthPar = await time('berth unpackLayer, all layers at once', () =>
    Promise.all(blobs.map((b, i) => unpackLayer(createReadStream(b), { dir: b2[i]!, format: 'overlay' }))),
  );
  console.log(`ratio berth/tar: sequential ${(berthSeq / tarSeq).toFixed(2)}, parallel ${(berthPar / tarPar).toFixed(2)}`);
}

main()
  .finally(() => rmSync(work, { recursive: true, force: true }))
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
