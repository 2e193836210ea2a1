// Builds an OCI bundle in a temp dir: a busybox rootfs with the probe at /probe, and a
// config.json from the runtime's own `spec` (runc's when that fails), edited by the test.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spec } from '../../src/runtime/spec.js';
import { PROBE, runtimeBin } from './runtime.js';
import { detachMountsUnder } from './leaks.js';

export type { Spec };

export const BUSYBOX = '/bin/busybox';
const APPLETS = [
  'sh', 'ls', 'cat', 'echo', 'sleep', 'true', 'false', 'id', 'hostname', 'mount', 'ps', 'env',
  'grep', 'head', 'mkdir', 'rm', 'touch', 'readlink', 'stat', 'test', 'kill', 'wc', 'tr', 'dd',
  'umount', 'uname', 'printf', 'pwd', 'ln', 'chmod', 'tail', 'timeout', 'sha256sum', 'stty', 'tty',
];

export interface Bundle {
  dir: string;
  rootfs: string;
  configPath: string;
  spec: Spec;
  /** Re-writes config.json from `spec` (after further edits). */
  save(): void;
  /** A fresh dir on the host, under the bundle, for bind mounts and --out files. */
  hostDir(name: string): string;
  cleanup(): Promise<void>;
}

export interface BundleOptions {
  /** Process args; default: the probe's report. */
  args?: string[];
  edit?: (spec: Spec) => void;
}

let cachedSpec: string | undefined;

/** The default config.json of the runtime under test (falls back to runc's, with a note). */
export function defaultSpecText(): string {
  if (cachedSpec) return cachedSpec;
  const dir = mkdtempSync(join(tmpdir(), 'berth-test-spec-'));
  try {
    try {
      execFileSync(runtimeBin(), ['spec', '--bundle', dir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
    } catch (e) {
      process.stderr.write(`bundle: '${runtimeBin()} spec' failed (${String(e)}); using runc spec\n`);
      execFileSync('/usr/sbin/runc', ['spec', '--bundle', dir], { stdio: 'ignore', timeout: 20_000 });
    }
    cachedSpec = readFileSync(join(dir, 'config.json'), 'utf8');
    return cachedSpec;
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
}

/** Populates a rootfs dir with busybox, its applets, the probe and minimal /etc files. */
export function makeRootfs(rootfs: string): void {
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'etc', 'root', 'home/user', 'mnt', 'run', 'var']) {
    mkdirSync(join(rootfs, d), { recursive: true });
  }
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', a));
  if (!existsSync(PROBE)) throw new Error(`${PROBE} is missing: run make -C native`);
  copyFileSync(PROBE, join(rootfs, 'probe'));
  chmodSync(join(rootfs, 'probe'), 0o755);
  writeFileSync(
    join(rootfs, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  writeFileSync(
    join(rootfs, 'etc', 'group'),
    'root:x:0:\ntty:x:5:\nusers:x:100:user\nuser:x:1000:\nextra:x:2000:user\nnogroup:x:65534:\n',
  );
  writeFileSync(join(rootfs, 'etc', 'hostname'), 'bundle\n');
}

/** The spec every test starts from: the runtime's default, no terminal, writable root, the probe. */
export function baseSpec(args: string[]): Spec {
  const spec = JSON.parse(defaultSpecText()) as Spec;
  spec.process!.terminal = false;
  spec.process!.args = args;
  spec.root = { path: 'rootfs', readonly: false };
  return spec;
}

export function makeBundle(opts: BundleOptions = {}): Bundle {
  const dir = mkdtempSync(join(tmpdir(), 'berth-test-bundle-'));
  // mkdtemp makes 0700; containers running as another uid (user namespaces) must traverse it.
  chmodSync(dir, 0o755);
  const rootfs = join(dir, 'rootfs');
  makeRootfs(rootfs);
  const spec = baseSpec(opts.args ?? ['/probe', 'report']);
  opts.edit?.(spec);
  const configPath = join(dir, 'config.json');
  const bundle: Bundle = {
    dir,
    rootfs,
    configPath,
    spec,
    save() {
      writeFileSync(configPath, JSON.stringify(bundle.spec, null, 2));
    },
    hostDir(name: string) {
      const p = join(dir, 'host', name);
      mkdirSync(p, { recursive: true });
      return p;
    },
    async cleanup() {
      detachMountsUnder(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
  bundle.save();
  return bundle;
}
