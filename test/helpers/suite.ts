// One per test file: a runtime with its own --root, the bundles and container ids the file
// made, and the final clean-up + leak check for its `after` hook.
import assert from 'node:assert/strict';
import { Runtime, show, type RunResult } from './runtime.js';
import { makeBundle, type Bundle, type BundleOptions } from './bundle.js';
import { findLeaks, reapLeaks, describeLeaks, type Leak } from './leaks.js';
import { sleep } from './runtime.js';

export interface ProbeReport {
  pid: number;
  ppid: number;
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  groups: number[];
  umask: string;
  cwd: string | { error: string };
  hostname: string;
  domainname: string;
  capabilities: { inheritable: string; permitted: string; effective: string; bounding: string; ambient: string };
  noNewPrivs: number;
  seccomp: number;
  namespaces: Record<string, string>;
  mounts: {
    id: number;
    parent: number;
    root: string;
    mountPoint: string;
    options: string;
    propagation: string[];
    fstype: string;
    source: string;
    superOptions: string;
  }[];
  rlimits: Record<string, { soft: number; hard: number }>;
  oomScoreAdj: number;
  env: string[];
  argv: string[];
  fds: { fd: number; target: string }[];
  cgroup: string | { error: string };
  uidMap: string | { error: string };
  gidMap: string | { error: string };
  cgroupFiles: Record<string, string>;
  devices: { path: string; type: string; major?: number; minor?: number; mode: string; uid: number; gid: number; target?: string }[];
  sysctls: Record<string, string | { error: string; errno: number }>;
  files: Record<string, { content?: string; error?: string; errno?: number }>;
  writable: Record<string, string>;
  syscalls: Record<string, { errno?: number; error: string }>;
}

let counter = 0;

export class Suite {
  readonly rt: Runtime;
  readonly name: string;
  private readonly bundles: Bundle[] = [];
  private readonly ids: string[] = [];
  /** Named netns this file creates (removed by the test, checked at the end). */
  readonly netns: string[] = [];
  /** More host paths to check for leaks (e.g. dirs bind-mounted into containers). */
  readonly extraPaths: string[] = [];

  constructor(name: string) {
    this.name = name;
    this.rt = new Runtime();
  }

  /** A unique container id that names this file (so leaks can be traced to it). */
  id(tag = 'c'): string {
    const id = `bt-${this.name}-${tag}-${process.pid}-${++counter}`;
    this.ids.push(id);
    return id;
  }

  bundle(opts: BundleOptions = {}): Bundle {
    const b = makeBundle(opts);
    this.bundles.push(b);
    return b;
  }

  /** Runs the probe report in the foreground in a fresh container; returns the parsed report. */
  async probe(
    opts: { extra?: string[]; edit?: BundleOptions['edit']; tag?: string; prepare?: (b: Bundle) => void } = {},
  ): Promise<{ report: ProbeReport; result: RunResult; bundle: Bundle }> {
    const bundle = this.bundle({ args: ['/probe', 'report', ...(opts.extra ?? [])], edit: opts.edit });
    opts.prepare?.(bundle);
    const id = this.id(opts.tag ?? 'probe');
    const result = await this.rt.run(id, bundle.dir);
    assert.equal(result.code, 0, `run ${id} with the probe failed\n${show(result)}`);
    let report: ProbeReport;
    try {
      report = JSON.parse(result.stdout) as ProbeReport;
    } catch (e) {
      throw new Error(`probe output is not JSON: ${String(e)}\n${show(result)}`);
    }
    return { report, result, bundle };
  }

  /** Deletes every container this file made, then reports and removes what leaked. */
  async finish(): Promise<Leak[]> {
    for (const id of this.ids) await this.rt.delete(id, { force: true });
    const scope = {
      paths: [...this.bundles.map((b) => b.dir), this.rt.root, ...this.extraPaths],
      ids: [...this.ids],
      roots: [this.rt.root],
      netns: this.netns,
    };
    let leaks = findLeaks(scope);
    for (let i = 0; i < 40 && leaks.length > 0; i++) {
      await sleep(100);
      leaks = findLeaks(scope);
    }
    if (leaks.length > 0) reapLeaks(leaks);
    for (const b of this.bundles) await b.cleanup();
    await this.rt.dispose();
    return leaks;
  }

  /** For `after(() => suite.assertClean())`. */
  async assertClean(): Promise<void> {
    const leaks = await this.finish();
    assert.equal(describeLeaks(leaks), '', 'the tests left things behind');
  }
}

// --- capabilities as the kernel numbers them (linux/capability.h) ---
export const CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** The 16-hex-digit mask /proc/self/status shows for a list of capability names. */
export function capMask(names: string[]): string {
  let m = 0n;
  for (const n of names) {
    const i = CAPS.indexOf(n);
    if (i < 0) throw new Error(`unknown capability ${n}`);
    m |= 1n << BigInt(i);
  }
  return m.toString(16).padStart(16, '0');
}

/** Capability names in a /proc/self/status hex mask. */
export function capNames(hex: string): string[] {
  const m = BigInt('0x' + hex);
  return CAPS.filter((_n, i) => (m >> BigInt(i)) & 1n);
}

/** The mount in a probe report at `point` (the last one, i.e. the visible one). */
export function mountAt(report: ProbeReport, point: string): ProbeReport['mounts'][number] | undefined {
  return [...report.mounts].reverse().find((m) => m.mountPoint === point);
}
