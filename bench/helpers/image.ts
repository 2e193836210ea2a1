// The benchmark image: N gzip layers of real files from this machine (taken in sorted order
// from a few system directories, each directory contributing at most one layer's worth so the
// layers differ in character: libraries, many small docs, binaries, python, headers), a
// config with the right diff_ids and a Docker schema-2 manifest. Built once with the tar and
// gzip (or pigz) CLIs and cached under a directory keyed by a version string.
import { spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MediaType, type Digest } from '../../src/image/types.js';
import { sha256Digest } from '../../src/image/digest.js';

export interface BenchBlob {
  digest: Digest;
  size: number;
  /** Where the blob lives in the cache. */
  file: string;
  mediaType: string;
}

export interface BenchLayer extends BenchBlob {
  diffId: Digest;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
  entries: number;
  /** The source directories it draws from. */
  sources: string[];
}

export interface BenchImage {
  dir: string;
  version: string;
  manifest: Buffer;
  manifestDigest: Digest;
  manifestMediaType: string;
  config: BenchBlob;
  layers: BenchLayer[];
}

export interface BuildImageOptions {
  /** Parent of the per-version cache directories. */
  cacheRoot: string;
  layers: number;
  /** Target size of one layer's tar. */
  layerBytes: number;
  /** Directories, in order; globs allowed in the last path component. */
  sources: string[];
  log?(line: string): void;
}

/** Bumped whenever the way the image is built changes, so old caches are not reused. */
const BUILD_FORMAT = 2;

export async function buildBenchImage(opts: BuildImageOptions): Promise<BenchImage> {
  const log = opts.log ?? (() => {});
  const key = { format: BUILD_FORMAT, layers: opts.layers, layerBytes: opts.layerBytes, sources: opts.sources };
  const version = `v${BUILD_FORMAT}-${sha256Digest(JSON.stringify(key)).slice(7, 19)}`;
  const dir = join(opts.cacheRoot, version);
  const cached = loadCached(dir);
  if (cached) return cached;

  mkdirSync(opts.cacheRoot, { recursive: true });
  const building = `${dir}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(join(building, 'blobs'), { recursive: true });
  try {
    const plans = planLayers(opts);
    log(`building the image ${version} in ${dir} (${plans.length} layers, once; later runs reuse it)`);
    const compressor = findCompressor();
    const layers: BenchLayer[] = [];
    // Two at a time: gzip is the cost and the machine has few cores.
    for (let i = 0; i < plans.length; i += 2) {
      const batch = plans.slice(i, i + 2);
      const built = await Promise.all(batch.map((plan, j) => buildLayer(building, plan, i + j, compressor)));
      for (const l of built) {
        log(`  layer ${layers.length + 1}: ${mib(l.tarSize)} MiB tar, ${l.entries} entries, ${mib(l.size)} MiB gzip (${l.sources.join(', ')})`);
        layers.push(l);
      }
    }
    writeDocuments(building, layers);
    rmSync(dir, { recursive: true, force: true });
    renameSync(building, dir);
    const done = loadCached(dir);
    if (!done) throw new Error(`the image cache ${dir} was written but does not load back`);
    return done;
  } catch (err) {
    rmSync(building, { recursive: true, force: true });
    throw err;
  }

  function writeDocuments(root: string, layers: BenchLayer[]): void {
    const config = {
      architecture: goArch(),
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((l) => ({ created: '2024-01-01T00:00:00Z', created_by: `bench/pull: files of ${l.sources.join(', ')}` })),
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = sha256Digest(configBytes);
    writeFileSync(join(root, 'blobs', configDigest.slice(7)), configBytes);
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { mediaType: MediaType.dockerConfig, size: configBytes.length, digest: configDigest },
      layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest })),
    };
    writeFileSync(join(root, 'manifest.json'), JSON.stringify(manifest, null, 2));
    const meta = { version, layers: layers.map(({ file: _file, ...rest }) => rest) };
    // Written last: its presence means the cache is complete.
    writeFileSync(join(root, 'image.json'), JSON.stringify(meta, null, 2));
  }
}

function loadCached(dir: string): BenchImage | undefined {
  try {
    const meta = JSON.parse(readFileSync(join(dir, 'image.json'), 'utf8')) as { version: string; layers: Array<Omit<BenchLayer, 'file'>> };
    const manifest = readFileSync(join(dir, 'manifest.json'));
    const parsed = JSON.parse(manifest.toString()) as { mediaType: string; config: { digest: Digest; size: number; mediaType: string } };
    const blob = (digest: Digest, size: number, mediaType: string): BenchBlob => {
      const file = join(dir, 'blobs', digest.slice(7));
      if (statSync(file).size !== size) throw new Error(`${file}: wrong size`);
      return { digest, size, file, mediaType };
    };
    return {
      dir,
      version: meta.version,
      manifest,
      manifestDigest: sha256Digest(manifest),
      manifestMediaType: parsed.mediaType,
      config: blob(parsed.config.digest, parsed.config.size, parsed.config.mediaType),
      layers: meta.layers.map((l) => ({ ...l, ...blob(l.digest, l.size, l.mediaType) })),
    };
  } catch {
    return undefined;
  }
}

interface LayerPlan {
  /** Paths relative to /, parents before children. */
  paths: string[];
  sources: string[];
}

/**
 * Walks the sources in sorted order and cuts the entries into layers of about layerBytes of
 * tar (512-byte headers plus padded file data); each source gives at most one layer's worth.
 * Every layer also lists the parent directories of its entries, as image builders do.
 */
function planLayers(opts: BuildImageOptions): LayerPlan[] {
  const roots = opts.sources.flatMap(expand).filter((r, i, all) => all.indexOf(r) === i && existsSync(r));
  const plans: LayerPlan[] = [];
  // inodes: files with several links in this layer; tar stores the second name as a hardlink.
  let current = { paths: [] as string[], sources: new Set<string>(), bytes: 0, inodes: new Set<string>() };
  const flush = (): void => {
    if (current.paths.length > 0) plans.push(finishPlan(current.paths, [...current.sources]));
    current = { paths: [], sources: new Set(), bytes: 0, inodes: new Set() };
  };
  for (const root of roots) {
    if (plans.length >= opts.layers) break;
    let taken = 0;
    // Sources nested in this one are walked on their own turn.
    const skip = new Set(roots.filter((r) => r !== root && r.startsWith(`${root}/`)));
    for (const entry of walk(root, skip)) {
      if (taken >= opts.layerBytes || plans.length >= opts.layers) break;
      const linked = entry.inode !== undefined && current.inodes.has(entry.inode);
      if (entry.inode !== undefined) current.inodes.add(entry.inode);
      const cost = 512 + (linked ? 0 : Math.ceil(entry.size / 512) * 512);
      current.paths.push(entry.path.slice(1));
      current.sources.add(root);
      current.bytes += cost;
      taken += cost;
      if (current.bytes >= opts.layerBytes) flush();
    }
  }
  if (plans.length < opts.layers) flush();
  if (plans.length < opts.layers) {
    throw new Error(`the sources (${roots.join(', ')}) hold only ${plans.length} layers of ${mib(opts.layerBytes)} MiB; add more sources`);
  }
  return plans;
}

function finishPlan(paths: string[], sources: string[]): LayerPlan {
  const all = new Set<string>();
  for (const p of paths) {
    for (let d = dirname(p); d !== '.' && d !== '/' && !all.has(d); d = dirname(d)) all.add(d);
    all.add(p);
  }
  // Byte order puts every directory before what it contains.
  return { paths: [...all].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), sources };
}

/** A path whose last component may hold `*` (Node 20 has no fs.globSync). */
function expand(pattern: string): string[] {
  const last = basename(pattern);
  if (!last.includes('*')) return [pattern];
  const parent = dirname(pattern);
  const escape = (text: string): string => text.replace(/[.+?^$()|[\]{}\\]/g, '\\$&');
  const re = new RegExp(`^${last.split('*').map(escape).join('.*')}$`);
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  return names.filter((n) => re.test(n)).sort().map((n) => join(parent, n));
}

/** Regular files, directories and symlinks under root (root included), depth first, sorted. */
function* walk(root: string, skip: Set<string>): Generator<{ path: string; size: number; inode?: string }> {
  const st = lstatSync(root);
  if (!st.isDirectory()) return;
  yield { path: root, size: 0 };
  const names = readdirSync(root).sort();
  for (const name of names) {
    const path = join(root, name);
    if (skip.has(path)) continue;
    const s = lstatSync(path, { throwIfNoEntry: false });
    if (!s) continue;
    if (s.isDirectory()) yield* walk(path, skip);
    else if (s.isFile()) yield { path, size: s.size, inode: s.nlink > 1 ? `${s.dev}:${s.ino}` : undefined };
    else if (s.isSymbolicLink()) yield { path, size: 0 };
  }
}

function findCompressor(): { cmd: string; args: string[] } {
  for (const dir of ['/usr/bin', '/bin', '/usr/local/bin']) {
    if (existsSync(join(dir, 'pigz'))) return { cmd: join(dir, 'pigz'), args: ['-6', '-c'] };
  }
  return { cmd: 'gzip', args: ['-6', '-c', '-n'] };
}

async function buildLayer(root: string, plan: LayerPlan, index: number, compressor: { cmd: string; args: string[] }): Promise<BenchLayer> {
  const list = join(root, `layer-${index}.list`);
  writeFileSync(list, plan.paths.map((p) => `${p}\0`).join(''));
  const tmp = join(root, 'blobs', `layer-${index}.tmp`);
  const tar = spawn(
    'tar',
    ['--format=posix', '--pax-option=delete=atime,delete=ctime', '--no-recursion', '-C', '/', '-cf', '-', '--null', '--verbatim-files-from', '--files-from', list],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const gz = spawn(compressor.cmd, compressor.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const tarErr = collect(tar.stderr!);
  const gzErr = collect(gz.stderr!);
  const tarExit = exitOf(tar);
  const gzExit = exitOf(gz);
  const uncompressed = new Tap('sha256');
  const compressed = new Tap('sha256');
  await Promise.all([pipeline(tar.stdout!, uncompressed, gz.stdin!), pipeline(gz.stdout!, compressed, createWriteStream(tmp))]);
  const [tarCode, gzCode] = await Promise.all([tarExit, gzExit]);
  // tar exits 1 when a file changed while it was read (another process updating /usr): the
  // archive is still whole and its digests are those of what was written.
  if (tarCode !== 0 && tarCode !== 1) throw new Error(`tar of layer ${index + 1} failed (exit ${tarCode}): ${tarErr().slice(-2000)}`);
  if (gzCode !== 0) throw new Error(`${compressor.cmd} of layer ${index + 1} failed (exit ${gzCode}): ${gzErr().slice(-2000)}`);
  const digest: Digest = `sha256:${compressed.hex()}`;
  const file = join(root, 'blobs', digest.slice(7));
  renameSync(tmp, file);
  rmSync(list);
  return {
    digest,
    size: compressed.bytes,
    file,
    mediaType: MediaType.dockerLayerGzip,
    diffId: `sha256:${uncompressed.hex()}`,
    tarSize: uncompressed.bytes,
    entries: plan.paths.length,
    sources: plan.sources,
  };
}

/** Passes data through, hashing and counting it. */
class Tap extends Transform {
  bytes = 0;
  private readonly hash: Hash;

  constructor(algorithm: string) {
    super();
    this.hash = createHash(algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }

  hex(): string {
    return this.hash.digest('hex');
  }
}

function collect(stream: NodeJS.ReadableStream): () => string {
  let text = '';
  stream.on('data', (d: Buffer) => {
    if (text.length < 64 * 1024) text += d.toString();
  });
  return () => text;
}

function exitOf(child: ReturnType<typeof spawn>): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

function goArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', ia32: '386' };
  return map[process.arch] ?? process.arch;
}

export function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(0);
}
