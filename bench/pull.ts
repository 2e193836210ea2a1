// bench/pull: pull + unpack of a ~1 GB, 5-layer image from a local registry, side by side in
// one run:
//   podman pull (overlay storage)  ·  docker pull (private dockerd + containerd, overlay2)  ·
//   berth pullImage() in this Node process (overlay snapshotter)  ·
//   the download floor (GET every blob, 3 at a time, bytes discarded).
// Each tool starts from an empty store every run; the order rotates between runs and the
// table shows medians, ratios against podman and docker, and where berth's time goes: the
// floors (download; gunzip + sha256; creating the image's inodes one by one on this disk),
// when berth received its last byte, and each layer's extraction time.
// The image (real files of this machine, gzip layers, Docker schema 2) is built once and kept
// in /var/tmp/berth-bench-pull/<version>/; the registry is Debian's docker-registry on
// 127.0.0.1 with a temp storage dir. Nothing is sent anywhere but 127.0.0.1.
// Usage: node dist/bench/pull.js [--runs N] [--settle S] [--keep]
//   --runs N    runs per tool (default 3)
//   --settle S  seconds of quiet before each timed pull (default 20; see runPeers)
//   --keep    keep the work dir (the last run's stores, daemon logs) and print its path
import { spawnSync } from 'node:child_process';
import { closeSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parseArgs } from 'node:util';
import { pullImage } from '../src/image/pull.js';
import { shortId } from '../src/image/progress.js';
import type { ImageContext } from '../src/image/context.js';
import { ContentStore } from '../src/image/store/content-store.js';
import { ImageStore } from '../src/image/store/image-store.js';
import { LeaseStore } from '../src/image/store/leases.js';
import { createSnapshotter } from '../src/image/snapshots/snapshotter.js';
import { RegistryClient } from '../src/image/registry/client.js';
import { startRegistry, registryUnavailable, type StartedRegistry } from '../test/helpers/registry.js';
import { detachMountsUnder, mountsUnder } from '../test/helpers/leaks.js';
import { buildBenchImage, mib, type BenchImage } from './helpers/image.js';
import { closeConnections, fetchBlobs, uploadImage } from './helpers/registry-http.js';
import { dockerSkipReason, startDocker } from '../test/helpers/dockerd.js';
import { describe, median, timeCommand, which } from './helpers/measure.js';

const CACHE_ROOT = '/var/tmp/berth-bench-pull';
const REPOSITORY = 'bench/pull';
const TAG = '1';
const LAYERS = 5;
const LAYER_BYTES = 192 * 1024 * 1024;
const SOURCES = ['/usr/lib/x86_64-linux-gnu', '/usr/share', '/usr/bin', '/usr/lib/python3*', '/usr/include', '/usr/sbin', '/usr/libexec', '/usr/lib'];
/** Layers fetched at once by berth and by the floor (Docker's default too). */
const CONCURRENCY = 3;
const PULL_TIMEOUT_MS = 15 * 60_000;

const { values: flags } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, settle: { type: 'string', default: '20' }, keep: { type: 'boolean', default: false } },
});
const SETTLE_S = Number(flags.settle);
if (!Number.isFinite(SETTLE_S) || SETTLE_S < 0) throw new Error(`--settle wants seconds, not "${flags.settle}"`);
const RUNS = Number(flags.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs wants a whole number of at least 1, not "${flags.runs}"`);

interface Sample {
  seconds: number;
  /** berth only: seconds from the start until the last layer byte arrived. */
  lastByte?: number;
  /** berth only: seconds from 'Extracting' to 'Pull complete', by short layer id. */
  layers?: Record<string, number>;
}

interface Peer {
  name: string;
  /** Pulls ref into an empty store under runDir; throws when the pull fails. */
  run(runDir: string, ref: string): Promise<Sample>;
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Runs a command to completion and times it; rejects with its stderr when it fails. */
async function timeRun(argv: string[], env?: NodeJS.ProcessEnv): Promise<Sample> {
  return { seconds: (await timeCommand(argv, { env, timeoutMs: PULL_TIMEOUT_MS })) / 1000 };
}

function podmanPeer(podman: string): Peer {
  return {
    name: 'podman pull',
    async run(dir, ref) {
      for (const d of ['root', 'runroot', 'tmp', 'libpod-tmp', 'networks']) mkdirSync(join(dir, d), { recursive: true });
      const argv = [
        podman,
        '--root', join(dir, 'root'),
        '--runroot', join(dir, 'runroot'),
        '--tmpdir', join(dir, 'libpod-tmp'),
        '--network-config-dir', join(dir, 'networks'),
        '--storage-driver', 'overlay',
        '--cgroup-manager', 'cgroupfs',
        '--events-backend', 'file',
        'pull', '--quiet', '--tls-verify=false', ref,
      ];
      // Podman stages blobs in $TMPDIR (default /var/tmp) before it applies them.
      return timeRun(privateBlobInfoCache(argv, join(dir, 'blob-info-cache')), { ...process.env, TMPDIR: join(dir, 'tmp') });
    },
  };
}

/**
 * Root podman keeps a blob-info cache in /var/lib/containers/cache whatever --root says. Run
 * it in a private mount namespace with an empty dir of the run bound over that one, so each
 * run starts without the previous run's records and the host's cache is left alone (the
 * namespace also takes podman's own storage mounts with it when podman exits).
 */
function privateBlobInfoCache(argv: string[], dir: string): string[] {
  const unshare = which('unshare');
  const target = ['/var/lib/containers/cache', '/var/lib/containers'].find((d) => existsSync(d));
  if (!unshare || !target) return argv;
  mkdirSync(dir, { recursive: true });
  const script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
  return [unshare, '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', dir, target, ...argv];
}

function dockerPeer(): Peer {
  return {
    name: 'docker pull',
    // A fresh private dockerd per run (untimed, ~0.2 s) rather than `docker rmi`: removing the
    // previous run's 33k files would slow every tool's file creation that follows (see runPeers).
    async run(dir, ref) {
      const dockerd = await startDocker({ label: 'bench-pull', storageDriver: 'overlay2', workDir: join(dir, 'docker') });
      try {
        return await timeRun(dockerd.argv(['pull', '--quiet', ref]), dockerd.env);
      } finally {
        const problems = await dockerd.stop();
        if (problems.length > 0) throw new Error(`the private docker left things behind:\n${problems.join('\n')}`);
      }
    },
  };
}

function berthPeer(): Peer {
  return {
    name: 'berth pullImage',
    async run(dir, ref) {
      const start = process.hrtime.bigint();
      const registry = new RegistryClient();
      const ctx: ImageContext = {
        content: new ContentStore(join(dir, 'content')),
        images: new ImageStore(join(dir, 'metadata')),
        leases: new LeaseStore(join(dir, 'metadata')),
        snapshots: createSnapshotter(join(dir, 'snapshots'), 'overlay'),
        registry,
      };
      let lastByte = 0;
      const extracting: Record<string, number> = {};
      const layers: Record<string, number> = {};
      try {
        await pullImage(ctx, ref, {
          concurrency: CONCURRENCY,
          onProgress(e) {
            const now = seconds(start);
            if (e.status === 'Downloading' && e.total !== undefined && e.current === e.total) lastByte = now;
            else if (e.status === 'Extracting' && e.id) extracting[e.id] = now;
            else if (e.status === 'Pull complete' && e.id && extracting[e.id] !== undefined) layers[e.id] = now - extracting[e.id]!;
          },
        });
      } finally {
        registry.close();
      }
      return { seconds: seconds(start), lastByte, layers };
    },
  };
}

function floorPeer(host: string, image: BenchImage): Peer {
  return {
    name: 'download floor',
    async run() {
      const start = process.hrtime.bigint();
      await fetchBlobs({ host, repository: REPOSITORY, digests: [image.config.digest, ...image.layers.map((l) => l.digest)], concurrency: CONCURRENCY });
      return { seconds: seconds(start) };
    },
  };
}

/** gunzip + sha256 of every layer from the cache files, 3 at a time, nothing written: the CPU
 *  berth must spend whatever its extraction does. */
async function inflateFloor(image: BenchImage): Promise<number> {
  const start = process.hrtime.bigint();
  const queue = [...image.layers];
  const worker = async (): Promise<void> => {
    for (let l = queue.shift(); l; l = queue.shift()) {
      const hash = createHash('sha256');
      await pipeline(
        createReadStream(l.file),
        createGunzip(),
        new Writable({
          write(chunk: Buffer, _enc, done) {
            hash.update(chunk);
            done();
          },
        }),
      );
      if (`sha256:${hash.digest('hex')}` !== l.diffId) throw new Error(`layer ${l.digest}: the cached blob does not match its diffID; delete ${image.dir}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return seconds(start);
}

interface Results {
  samples: Map<string, Sample[]>;
  failures: Map<string, string>;
}

/** RUNS rounds; round r starts with peer r (mod peers), so no tool always goes first. */
async function runPeers(peers: Peer[], work: string, ref: string): Promise<Results> {
  const samples = new Map<string, Sample[]>(peers.map((p) => [p.name, []]));
  // A tool that fails is reported and left out of the later runs; the others go on.
  const failures = new Map<string, string>();
  for (let run = 0; run < RUNS; run++) {
    const order = peers.map((_, i) => peers[(i + run) % peers.length]!);
    for (const peer of order) {
      if (failures.has(peer.name)) continue;
      const dir = join(work, 'runs', `${run}-${peer.name.split(' ')[0]}`);
      mkdirSync(dir, { recursive: true });
      // Every run's store stays until the bench ends. On ext4 without a journal (this
      // machine's /) inode allocation skips, one by one, inodes deleted in the last 60-300 s
      // (recently_deleted()): right after a 33k-file delete every create costs ~0.3-0.5 ms of
      // kernel CPU instead of ~0.02 ms, and the order of tools, not the tools, would decide
      // the result. Each tool also starts with no dirty pages of the previous one to write
      // back, after a quiet spell (--settle).
      spawnSync('sync');
      if (SETTLE_S > 0) await new Promise((done) => setTimeout(done, SETTLE_S * 1000));
      try {
        const sample = await peer.run(dir, ref);
        samples.get(peer.name)!.push(sample);
        const extra = sample.lastByte ? ` (last byte at ${sample.lastByte.toFixed(2)} s)` : '';
        console.log(`run ${run + 1}/${RUNS}: ${peer.name.padEnd(16)} ${sample.seconds.toFixed(2).padStart(7)} s${extra}`);
      } catch (err) {
        failures.set(peer.name, describe(err));
        console.log(`run ${run + 1}/${RUNS}: ${peer.name.padEnd(16)} FAILED: ${describe(err)}`);
      } finally {
        detachMountsUnder(dir);
      }
    }
  }
  return { samples, failures };
}

function report(image: BenchImage, peers: Peer[], results: Results, floors: { inflate: number; createUs: number }): void {
  const { samples, failures } = results;
  const log = (line: string): void => console.log(line);
  const med = (name: string): number | undefined => {
    const s = samples.get(name);
    return s && s.length > 0 && !failures.has(name) ? median(s.map((x) => x.seconds)) : undefined;
  };
  const tarBytes = image.layers.reduce((n, l) => n + l.tarSize, 0);
  const gzBytes = image.layers.reduce((n, l) => n + l.size, 0);
  const podmanS = med('podman pull');
  const dockerS = med('docker pull');
  log(`\nbench/pull: ${mib(tarBytes)} MiB in ${image.layers.length} gzip layers (${mib(gzBytes)} MiB) from a local registry, ` +
    `median of ${RUNS} run${RUNS > 1 ? 's' : ''}, order rotated per run\n`);
  log(`${'tool'.padEnd(18)} ${'median s'.padStart(9)} ${'x podman'.padStart(9)} ${'x docker'.padStart(9)}`);
  for (const p of peers) {
    const s = med(p.name);
    if (s === undefined) {
      log(`${p.name.padEnd(18)} ${'failed'.padStart(9)}`);
      continue;
    }
    const ratio = (base: number | undefined): string => (base ? (s / base).toFixed(2) : '-').padStart(9);
    log(`${p.name.padEnd(18)} ${s.toFixed(2).padStart(9)} ${ratio(podmanS)} ${ratio(dockerS)}`);
  }

  const floor = med('download floor');
  const total = med('berth pullImage');
  log(`\nwhere berth's time goes (medians)`);
  const row = (label: string, value: number, extra = ''): void => log(`  ${label.padEnd(56)} ${value.toFixed(2).padStart(7)} s${extra}`);
  if (floor !== undefined) row(`download floor (GET all blobs, ${CONCURRENCY} at a time)`, floor);
  row('gunzip + sha256 of all layers (CPU floor, once)', floors.inflate);
  const entries = image.layers.reduce((n, l) => n + l.entries, 0);
  row(`creating ${entries} inodes one by one here (${floors.createUs.toFixed(0)} us each, once)`, (entries * floors.createUs) / 1e6);
  if (total !== undefined) {
    const berth = samples.get('berth pullImage')!;
    const lastByte = median(berth.map((x) => x.lastByte ?? 0));
    row('berth: last layer byte received at', lastByte, `  (${((lastByte / total) * 100).toFixed(0)}% of total)`);
    row('berth: unpack tail after the last byte', total - lastByte);
    row('berth: total', total, floor ? `  (${(total / floor).toFixed(1)}x the download floor)` : '');
    log(`  berth: per layer, 'Extracting' to 'Pull complete' (layers overlap, ${CONCURRENCY} at a time):`);
    for (const l of image.layers) {
      const times = berth.map((x) => x.layers?.[shortId(l.digest)]).filter((t): t is number => t !== undefined);
      if (times.length === 0) continue;
      const t = median(times);
      log(`    ${shortId(l.digest)} ${mib(l.tarSize).padStart(5)} MiB ${String(l.entries).padStart(6)} entries ${t.toFixed(2).padStart(7)} s  ` +
        `${(l.tarSize / 1024 / 1024 / t).toFixed(0).padStart(4)} MiB/s  (${l.sources.join(', ')})`);
    }
    if (podmanS) log(`  target berth <= 0.5x podman: ${total / podmanS <= 0.5 ? 'met' : 'not met'} (${(total / podmanS).toFixed(2)}x)`);
  }
  for (const [name, message] of failures) log(`failed: ${name}: ${message}`);
}

/** The peers this host can run (notes say why others are skipped). */
function setUpPeers(opts: { host: string; image: BenchImage }): { peers: Peer[]; notes: string[] } {
  const notes: string[] = [];
  const peers: Peer[] = [];
  const isRoot = process.getuid?.() === 0;
  const podman = which('podman');
  if (!podman) notes.push('podman: not installed (apt-get install podman), skipped');
  else if (!isRoot) notes.push('podman: skipped (the bench runs podman as root)');
  else peers.push(podmanPeer(podman));

  // Pulls only: no container runs, so neither the shim nor runc is needed.
  const dockerSkip = dockerSkipReason({ containers: false });
  if (dockerSkip) notes.push(`docker: skipped (${dockerSkip})`);
  else peers.push(dockerPeer());
  peers.push(berthPeer());
  peers.push(floorPeer(opts.host, opts.image));
  return { peers, notes };
}

type Cleanup = () => Promise<void> | void;

/** Microseconds per empty-file create in dir (serial, the kernel's cost only): on some disks
 *  this, not decompression, bounds every tool's extraction of many small files. */
function createCost(dir: string): number {
  const count = 2000;
  mkdirSync(dir, { recursive: true });
  const start = process.hrtime.bigint();
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(dir, String(d)));
    for (let f = 0; f < count / 20; f++) closeSync(openSync(join(dir, String(d), String(f)), 'wx', 0o600));
  }
  const us = (seconds(start) * 1e6) / (count + 20);
  rmSync(dir, { recursive: true, force: true });
  return us;
}

async function main(): Promise<void> {
  const why = registryUnavailable();
  if (why) throw new Error(`bench/pull needs the registry: ${why}`);

  const image = await buildBenchImage({ cacheRoot: CACHE_ROOT, layers: LAYERS, layerBytes: LAYER_BYTES, sources: SOURCES, log: console.log });
  console.log(`image ${image.version}: ${image.layers.length} layers, ${mib(image.layers.reduce((n, l) => n + l.tarSize, 0))} MiB uncompressed, ` +
    `${mib(image.layers.reduce((n, l) => n + l.size, 0))} MiB gzip, ${image.layers.reduce((n, l) => n + l.entries, 0)} entries (cache ${image.dir})`);

  const work = mkdtempSync(join(tmpdir(), 'berth-bench-pull-'));
  const cleanups: Cleanup[] = [];
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`bench: cleanup: ${describe(err)}`);
      }
    }
    closeConnections();
    const left = mountsUnder([work]);
    if (left.length > 0) {
      console.error(`bench: mounts left under ${work}, detaching: ${left.map((m) => m.mountPoint).join(', ')}`);
      detachMountsUnder(work);
    }
    if (flags.keep) console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    console.error(`bench: ${sig}, cleaning up`);
    void cleanup().finally(() => process.exit(128 + (constants.signals[sig] ?? 0)));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const registry: StartedRegistry = await startRegistry();
    cleanups.push(() => registry.stop());
    const start = process.hrtime.bigint();
    await uploadImage({
      host: registry.host,
      repository: REPOSITORY,
      tag: TAG,
      blobs: [image.config, ...image.layers],
      manifest: image.manifest,
      manifestMediaType: image.manifestMediaType,
    });
    const ref = `${registry.host}/${REPOSITORY}:${TAG}`;
    console.log(`pushed ${ref} to a docker-registry on 127.0.0.1 in ${seconds(start).toFixed(1)} s`);

    const { peers, notes } = setUpPeers({ host: registry.host, image });
    for (const n of notes) console.log(n);
    const results = await runPeers(peers, work, ref);
    const floors = { inflate: await inflateFloor(image), createUs: createCost(join(work, 'create-cost')) };
    report(image, peers, results, floors);
    for (const n of notes) console.log(`note: ${n}`);
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

await main();
