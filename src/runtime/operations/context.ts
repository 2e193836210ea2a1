// What every runtime operation needs: the state store, where warnings go, and host facts
// read once per process (lazily: `berth-oci state` must not pay for what it does not use).
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { BerthError } from '../../errors.js';
import { lastCap, ownBoundingSet } from '../capabilities.js';
import { createCgroupManager, discoverCgroupHost, loadCgroupManager, type CgroupHost, type CgroupManager, type CgroupManagerJson } from '../cgroups/index.js';
import type { HostFacts } from '../compile.js';
import { hostHardLimits, readHostRlimits } from '../rlimits.js';
import { processAlive } from '../../host/proc.js';
import { StateStore, type ContainerRecord, type Status } from '../state.js';

export interface RuntimeOptions {
  root?: string;
  /** Where warnings go (a clamped rlimit, a failed poststop hook). Default: stderr. */
  warn?: (message: string) => void;
  /** runc's --systemd-cgroup. */
  systemdCgroup?: boolean;
  /** Receives launch plans and other detail (--debug). */
  debug?: (message: string) => void;
}

export class RuntimeContext {
  readonly store: StateStore;
  readonly warn: (message: string) => void;
  readonly systemdCgroup: boolean;
  readonly debug?: (message: string) => void;
  private facts?: HostFacts;
  private cgroupHostPromise?: Promise<CgroupHost>;

  constructor(opts: RuntimeOptions = {}) {
    this.store = new StateStore(opts.root);
    this.warn = opts.warn ?? ((m) => process.stderr.write(`berth-oci: warning: ${m}\n`));
    this.systemdCgroup = opts.systemdCgroup ?? false;
    this.debug = opts.debug;
  }

  hostFacts(): HostFacts {
    if (!this.facts) {
      const limits = readHostRlimits();
      this.facts = { lastCap: lastCap(), boundingSet: ownBoundingSet(), rlimitHard: hostHardLimits(limits) };
    }
    return this.facts;
  }

  cgroupHost(): Promise<CgroupHost> {
    return (this.cgroupHostPromise ??= discoverCgroupHost());
  }

  async newCgroupManager(id: string, cgroupsPath: string | undefined): Promise<CgroupManager> {
    return createCgroupManager({ id, cgroupsPath, host: await this.cgroupHost(), systemd: this.systemdCgroup });
  }

  cgroupOf(rec: ContainerRecord): CgroupManager | undefined {
    return rec.cgroup ? loadCgroupManager(rec.cgroup as CgroupManagerJson) : undefined;
  }

  /** Status derived from the process, the fifo and the freezer. */
  async status(rec: ContainerRecord, cg = this.cgroupOf(rec)): Promise<Status> {
    if (!rec.pid) return 'creating';
    if (!processAlive(rec.pid, rec.pidStartTime)) return 'stopped';
    // Frozen first: a created container can be paused too (as with runc).
    if (cg && (await cg.state().catch(() => 'thawed')) === 'frozen') return 'paused';
    if (!rec.started && existsSync(this.store.fifoPath(rec.id))) return 'created';
    return 'running';
  }

  /** Loads a container with its cgroup manager and status; NotFound when it does not exist. */
  async load(id: string): Promise<{ rec: ContainerRecord; cg?: CgroupManager; status: Status }> {
    const rec = this.store.load(id);
    const cg = this.cgroupOf(rec);
    return { rec, cg, status: await this.status(rec, cg) };
  }
}

export function notRunning(id: string, status: Status, action: string): BerthError {
  return new BerthError('FailedPrecondition', `cannot ${action} container "${id}": container is ${status}`, {
    hint: status === 'stopped' ? 'container not running' : undefined,
  });
}

/** The user that owns the runtime root, for `state`'s "owner" (runc prints "" for root). */
export function ownerName(): string {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return '';
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[2] === String(uid));
    return line?.split(':')[0] ?? String(uid);
  } catch {
    return String(uid);
  }
}

/** Namespaces of pid that differ from this process's own (what exec must join). */
export function differingNamespaces(pid: number): { name: string; path: string }[] {
  const names = ['user', 'pid', 'ipc', 'uts', 'net', 'cgroup', 'time', 'mnt'];
  const out: { name: string; path: string }[] = [];
  for (const n of names) {
    let theirs: string, ours: string;
    try {
      theirs = readlinkSync(`/proc/${pid}/ns/${n}`);
      ours = readlinkSync(`/proc/self/ns/${n}`);
    } catch {
      continue;
    }
    if (theirs !== ours) out.push({ name: n, path: `/proc/${pid}/ns/${n}` });
  }
  return out;
}
