// The conformance suite every Snapshotter passes (after containerd's snapshots/testsuite):
// layers are written by hand in the format the snapshotter asks for (no unpacker), then
// checked through a real mount of a container snapshot. Needs root.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  constants,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isBerthError, type ErrorCode } from '../src/errors.js';
import { lgetxattr, lsetxattr, mknod } from '../src/host/sys.js';
import { chainIds, sha256Digest } from '../src/image/digest.js';
import type { Digest } from '../src/image/types.js';
import { mountAll, unmountAll } from '../src/image/snapshots/mount.js';
import type { Snapshotter } from '../src/image/snapshots/snapshotter.js';

export type SnapshotterFactory = (root: string) => Snapshotter;

export interface SuiteOptions {
  /** Why the backend cannot run here, if it cannot (the suite is then skipped). */
  unsupported?: () => string | undefined;
}

/** Layer contents: a callback that writes one layer into dir, in sn.layerFormat. */
type LayerFn = (dir: string, sn: Snapshotter) => void;

interface Env {
  root: string;
  mnt: string;
  sn: Snapshotter;
}

const CHAIN = chainIds(Array.from({ length: 256 }, (_, i) => sha256Digest(`layer ${i}`)));

/** A deletion in the layer format the snapshotter asks for. */
function whiteout(dir: string, path: string, sn: Snapshotter): void {
  const full = join(dir, path);
  if (sn.layerFormat === 'overlay') mknod(full, constants.S_IFCHR, 0, 0);
  else rmSync(full, { recursive: true });
}

/** Makes path an opaque directory (lower contents hidden) in the layer format. */
function opaque(dir: string, path: string, sn: Snapshotter): void {
  const full = join(dir, path);
  if (sn.layerFormat === 'overlay') {
    mkdirSync(full, { recursive: true });
    lsetxattr(full, 'trusted.overlay.opaque', Buffer.from('y'));
  } else {
    rmSync(full, { recursive: true, force: true });
    mkdirSync(full);
  }
}

async function commitLayer(sn: Snapshotter, index: number, write: LayerFn): Promise<Digest> {
  const chainId = CHAIN[index];
  const writer = await sn.prepareLayer(chainId, index === 0 ? undefined : CHAIN[index - 1]);
  try {
    write(writer.dir, sn);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await writer.commit();
  return chainId;
}

function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.push(path);
    }
  };
  walk(root);
  return out;
}

function mountsUnder(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(path));
}

function berthError(code: ErrorCode): (err: unknown) => boolean {
  return (err: unknown) => isBerthError(err, code);
}

async function withEnv(factory: SnapshotterFactory, fn: (env: Env) => Promise<void>): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'berth-snap-'));
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  try {
    await fn({ root: join(base, 'root'), mnt, sn: factory(join(base, 'root')) });
  } finally {
    unmountAll(mnt);
    const left = mountsUnder(base);
    rmSync(base, { recursive: true, force: true });
    if (left.length > 0) assert.fail(`mounts left under ${base}: ${left.join('\n')}`);
  }
}

export function snapshotterSuite(name: string, factory: SnapshotterFactory, opts: SuiteOptions = {}): void {
  const uid = process.getuid?.() ?? -1;
  const reason = uid !== 0 ? 'needs root (mounts, mknod, chown)' : opts.unsupported?.();

  describe(`snapshotter ${name}`, { skip: reason ?? false }, () => {
    test('prepareLayer, commit, hasLayer and list', () =>
      withEnv(factory, async ({ sn }) => {
        assert.equal(await sn.hasLayer(CHAIN[0]), false);
        const writer = await sn.prepareLayer(CHAIN[0], undefined);
        assert.deepEqual(readdirSync(writer.dir), [], 'a base layer starts empty');
        writeFileSync(join(writer.dir, 'hello'), 'world');
        assert.equal(await sn.hasLayer(CHAIN[0]), false, 'not visible before commit');
        assert.deepEqual(await sn.list(), []);
        await writer.commit();
        assert.equal(await sn.hasLayer(CHAIN[0]), true);
        assert.deepEqual(await sn.list(), [{ key: CHAIN[0], kind: 'committed' }]);
        await assert.rejects(sn.prepareLayer(CHAIN[0], undefined), berthError('AlreadyExists'));

        const second = await sn.prepareLayer(CHAIN[1], CHAIN[0]);
        if (sn.layerFormat === 'copy') assert.equal(readFileSync(join(second.dir, 'hello'), 'utf8'), 'world', 'copy layers start from the parent');
        else assert.deepEqual(readdirSync(second.dir), [], 'overlay layers start empty');
        await second.commit();
        assert.deepEqual(await sn.list(), [
          { key: CHAIN[0], kind: 'committed' },
          { key: CHAIN[1], kind: 'committed', parent: CHAIN[0] },
        ].sort((a, b) => (a.key < b.key ? -1 : 1)));
      }));

    test('file kinds, owners, modes, times, xattrs, devices and hardlinks survive into the rootfs', () =>
      withEnv(factory, async ({ sn, mnt }) => {
        const mtime = new Date('2020-01-02T03:04:05Z');
        await commitLayer(sn, 0, (dir) => {
          mkdirSync(join(dir, 'bin'));
          writeFileSync(join(dir, 'bin/tool'), '#!/bin/sh\n');
          chmodSync(join(dir, 'bin/tool'), 0o4755);
          writeFileSync(join(dir, 'owned'), 'x');
          chownSync(join(dir, 'owned'), 1000, 1001);
          utimesSync(join(dir, 'owned'), mtime, mtime);
          symlinkSync('bin/tool', join(dir, 'link'));
          linkSync(join(dir, 'bin/tool'), join(dir, 'hard'));
          mknod(join(dir, 'null'), constants.S_IFCHR | 0o666, 1, 3);
          mknod(join(dir, 'fifo'), constants.S_IFIFO | 0o600, 0, 0);
          lsetxattr(join(dir, 'owned'), 'user.berth', Buffer.from('kept'));
        });
        const mounts = await sn.prepare('files', CHAIN[0]);
        mountAll(mounts, mnt);
        try {
          assert.equal(statSync(join(mnt, 'bin/tool')).mode & 0o7777, 0o4755);
          const owned = statSync(join(mnt, 'owned'));
          assert.equal(owned.uid, 1000);
          assert.equal(owned.gid, 1001);
          assert.equal(owned.mtimeMs, mtime.getTime());
          assert.deepEqual(lgetxattr(join(mnt, 'owned'), 'user.berth'), Buffer.from('kept'));
          assert.equal(readlinkSync(join(mnt, 'link')), 'bin/tool');
          assert.equal(statSync(join(mnt, 'hard')).ino, statSync(join(mnt, 'bin/tool')).ino);
          const dev = lstatSync(join(mnt, 'null'));
          assert.ok(dev.isCharacterDevice());
          assert.equal(dev.rdev, (1 << 8) | 3);
          assert.ok(lstatSync(join(mnt, 'fifo')).isFIFO());
        } finally {
          unmountAll(mnt);
        }
        assert.deepEqual(mountsUnder(mnt), []);
      }));

    test('a three-layer chain: deletions, an opaque dir, and writes that stay in the active snapshot', () =>
      withEnv(factory, async ({ sn, mnt }) => {
        await commitLayer(sn, 0, (dir) => {
          writeFileSync(join(dir, 'a'), '1');
          writeFileSync(join(dir, 'gone'), 'deleted in layer 2');
          mkdirSync(join(dir, 'opq'));
          writeFileSync(join(dir, 'opq/old1'), 'hidden');
          writeFileSync(join(dir, 'opq/old2'), 'hidden');
          mkdirSync(join(dir, 'etc'));
          writeFileSync(join(dir, 'etc/keep'), 'kept');
          mkdirSync(join(dir, 'dir'));
          writeFileSync(join(dir, 'dir/f'), 'deleted in layer 3');
        });
        await commitLayer(sn, 1, (dir, s) => {
          writeFileSync(join(dir, 'a'), '2');
          whiteout(dir, 'gone', s);
          opaque(dir, 'opq', s);
          writeFileSync(join(dir, 'opq/new'), 'visible');
        });
        await commitLayer(sn, 2, (dir, s) => {
          writeFileSync(join(dir, 'three'), '3');
          if (s.layerFormat === 'overlay') mkdirSync(join(dir, 'dir'));
          whiteout(dir, 'dir/f', s);
        });

        const expectImageView = (root: string): void => {
          assert.equal(readFileSync(join(root, 'a'), 'utf8'), '2');
          assert.equal(existsSync(join(root, 'gone')), false);
          assert.deepEqual(readdirSync(join(root, 'opq')), ['new']);
          assert.deepEqual(readdirSync(join(root, 'dir')), []);
          assert.equal(readFileSync(join(root, 'three'), 'utf8'), '3');
          assert.equal(readFileSync(join(root, 'etc/keep'), 'utf8'), 'kept');
        };

        mountAll(await sn.prepare('ctr', CHAIN[2]), mnt);
        try {
          await assert.rejects(sn.remove('ctr'), berthError('FailedPrecondition'), 'a mounted snapshot is not removed');
          expectImageView(mnt);
          writeFileSync(join(mnt, 'a'), 'changed');
          writeFileSync(join(mnt, 'written'), 'by the container');
          unlinkSync(join(mnt, 'etc/keep'));
          rmSync(join(mnt, 'opq'), { recursive: true });
        } finally {
          unmountAll(mnt);
        }
        // The container's changes persist in its snapshot across mounts...
        mountAll(await sn.mounts('ctr'), mnt);
        try {
          assert.equal(readFileSync(join(mnt, 'a'), 'utf8'), 'changed');
          assert.equal(readFileSync(join(mnt, 'written'), 'utf8'), 'by the container');
          assert.equal(existsSync(join(mnt, 'etc/keep')), false);
          assert.equal(existsSync(join(mnt, 'opq')), false);
        } finally {
          unmountAll(mnt);
        }
        // ...and never reach the committed layers another container starts from.
        mountAll(await sn.prepare('ctr2', CHAIN[2]), mnt);
        try {
          expectImageView(mnt);
          assert.equal(existsSync(join(mnt, 'written')), false);
        } finally {
          unmountAll(mnt);
        }
        // A container without a parent starts from an empty, writable directory.
        mountAll(await sn.prepare('scratch', undefined), mnt);
        try {
          assert.deepEqual(readdirSync(mnt), []);
          writeFileSync(join(mnt, 'f'), 'x');
        } finally {
          unmountAll(mnt);
        }
      }));

    test('remove: children first, active or committed, unknown keys are NotFound', () =>
      withEnv(factory, async ({ sn, root }) => {
        await commitLayer(sn, 0, (dir) => writeFileSync(join(dir, 'f'), '0'));
        await commitLayer(sn, 1, (dir) => writeFileSync(join(dir, 'g'), '1'));
        await sn.prepare('ctr', CHAIN[1]);
        assert.deepEqual(
          (await sn.list()).find((s) => s.key === 'ctr'),
          { key: 'ctr', kind: 'active', parent: CHAIN[1] },
        );
        await assert.rejects(sn.prepare('ctr', CHAIN[1]), berthError('AlreadyExists'));
        await assert.rejects(sn.remove(CHAIN[0]), berthError('FailedPrecondition'));
        await assert.rejects(sn.remove(CHAIN[1]), berthError('FailedPrecondition'), 'an active snapshot holds its parent');
        await sn.remove('ctr');
        await assert.rejects(sn.mounts('ctr'), berthError('NotFound'));
        await sn.remove(CHAIN[1]);
        await sn.remove(CHAIN[0]);
        assert.deepEqual(await sn.list(), []);
        assert.equal(await sn.hasLayer(CHAIN[0]), false);
        await assert.rejects(sn.remove('ctr'), berthError('NotFound'));
        await assert.rejects(sn.remove(CHAIN[5]), berthError('NotFound'));
        await assert.rejects(sn.prepare('../escape', undefined), berthError('InvalidArgument'));
        assert.deepEqual(filesUnder(root), [], 'nothing is left once every snapshot is removed');
      }));

    test('two unpacks of the same layer racing both commit, into one snapshot', () =>
      withEnv(factory, async ({ sn, root, mnt }) => {
        const first = await sn.prepareLayer(CHAIN[0], undefined);
        const second = await sn.prepareLayer(CHAIN[0], undefined);
        writeFileSync(join(first.dir, 'f'), 'same');
        writeFileSync(join(second.dir, 'f'), 'same');
        await Promise.all([first.commit(), second.commit()]);
        assert.deepEqual(await sn.list(), [{ key: CHAIN[0], kind: 'committed' }]);
        mountAll(await sn.prepare('ctr', CHAIN[0]), mnt);
        try {
          assert.deepEqual(readdirSync(mnt), ['f']);
        } finally {
          unmountAll(mnt);
        }
        await sn.remove('ctr');
        await sn.remove(CHAIN[0]);
        assert.deepEqual(filesUnder(root), []);
      }));

    test('a missing parent is NotFound; abort leaves nothing', () =>
      withEnv(factory, async ({ sn, root }) => {
        if (sn.layerStartsFromParent) {
          await assert.rejects(sn.prepareLayer(CHAIN[1], CHAIN[0]), berthError('NotFound'));
        } else {
          // An empty layer dir may be filled before its parent exists; only commit needs it.
          const early = await sn.prepareLayer(CHAIN[1], CHAIN[0]);
          await assert.rejects(early.commit(), berthError('NotFound'));
          assert.equal(await sn.hasLayer(CHAIN[1]), false);
        }
        await assert.rejects(sn.prepare('ctr', CHAIN[0]), berthError('NotFound'));
        const writer = await sn.prepareLayer(CHAIN[0], undefined);
        writeFileSync(join(writer.dir, 'partial'), 'x');
        mkdirSync(join(writer.dir, 'sub'));
        await writer.abort();
        assert.equal(existsSync(writer.dir), false);
        assert.equal(await sn.hasLayer(CHAIN[0]), false);
        assert.deepEqual(await sn.list(), []);
        assert.deepEqual(filesUnder(root), []);
      }));

    test('kill -9 before a commit leaves nothing behind once a new snapshotter starts', () =>
      withEnv(factory, async ({ sn, root }) => {
        await commitLayer(sn, 0, (dir) => writeFileSync(join(dir, 'base'), 'committed'));
        await killedWriter(root, sn.kind);
        const fresh = factory(root);
        assert.equal(await fresh.hasLayer(CHAIN[0]), true);
        assert.equal(await fresh.hasLayer(CHAIN[1]), false);
        assert.deepEqual(await fresh.list(), [{ key: CHAIN[0], kind: 'committed' }]);
        await fresh.remove(CHAIN[0]);
        assert.deepEqual(filesUnder(root), [], 'leftovers of the killed process were removed');
      }));

    test('a 200-layer chain mounts', () =>
      withEnv(factory, async ({ sn, mnt }) => {
        const layers = 200;
        for (let i = 0; i < layers; i++) {
          await commitLayer(sn, i, (dir) => {
            writeFileSync(join(dir, `layer-${i}`), String(i));
            writeFileSync(join(dir, 'top'), String(i));
          });
        }
        mountAll(await sn.prepare('many', CHAIN[layers - 1]), mnt);
        try {
          const names = readdirSync(mnt);
          assert.equal(names.length, layers + 1);
          assert.equal(readFileSync(join(mnt, 'top'), 'utf8'), String(layers - 1));
          assert.equal(readFileSync(join(mnt, 'layer-0'), 'utf8'), '0');
        } finally {
          unmountAll(mnt);
        }
      }));
  });
}

const SNAPSHOTTER_MODULE = fileURLToPath(new URL('../src/image/snapshots/snapshotter.js', import.meta.url));

/** A separate process that starts two layers on the committed layer 0, writes into them
 *  and dies by SIGKILL before committing either. `root` is what the factory was given;
 *  the child builds its snapshotter with createSnapshotter(root, kind). */
async function killedWriter(root: string, kind: string): Promise<void> {
  const script = `
    import { writeFileSync, mkdirSync } from 'node:fs';
    import { join } from 'node:path';
    const { createSnapshotter } = await import(${JSON.stringify(SNAPSHOTTER_MODULE)});
    const sn = createSnapshotter(${JSON.stringify(root)}, ${JSON.stringify(kind)});
    const w = await sn.prepareLayer(${JSON.stringify(CHAIN[1])}, ${JSON.stringify(CHAIN[0])});
    for (let i = 0; i < 20; i++) writeFileSync(join(w.dir, 'f' + i), 'partial');
    mkdirSync(join(w.dir, 'd'));
    const w2 = await sn.prepareLayer(${JSON.stringify(CHAIN[2])}, ${JSON.stringify(CHAIN[0])});
    writeFileSync(join(w2.dir, 'x'), 'partial');
    process.kill(process.pid, 'SIGKILL');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, sig) => resolve(sig)));
  clearTimeout(timer);
  assert.equal(signal, 'SIGKILL');
}
