// The cgroupfs manager: routes every resource group and operation to the hierarchy that
// serves its controller (v1 first, then v2), so v1, v2 and hybrid hosts share one code path.

import { readdirSync, rmdirSync } from 'node:fs';
import { attachCleanupError, BerthError } from '../../errors.js';
import type { DeviceCgroup, Resources } from '../spec.js';
import type { ApplyOptions, CgroupBackend, Group } from './backend.js';
import { collectPids, errnoOf, kernelIo, sleep, type CgroupIo } from './cgroupfs.js';
import { compileDeviceProgram } from './device-bpf.js';
import type { CgroupManager, CgroupManagerJson, CgroupMode, CgroupStats, CgroupWarning, FreezerState } from './types.js';
import { V1Cgroup } from './v1.js';
import { V2Cgroup } from './v2.js';

const HOW_TO_GET: Partial<Record<Group, string>> = {
  net_cls: 'mount the net_cls controller (cgroup v1 only) or remove the field',
  net_prio: 'mount the net_prio controller (cgroup v1 only) or remove the field',
};

const isSet = (o: object | undefined): boolean => !!o && Object.values(o).some((v) => v !== undefined);

/**
 * The resources without the zeros runc reads as "not set". Docker sends cpu.shares 0 and
 * blockIO.weight 0 with every container, and `docker update` sends 0 for every memory and
 * cpu field it does not change; written as-is they would set shares 2 (the kernel's floor),
 * fail (period 0) or OOM-kill the container (limit 0).
 */
export function withoutUnsetZeros(r: Resources): Resources {
  const drop = <T extends object>(o: T | undefined, keys: (keyof T)[]): T | undefined => {
    if (!o) return o;
    const out = { ...o };
    for (const k of keys) if (out[k] === 0) delete out[k];
    return out;
  };
  return {
    ...r,
    memory: drop(r.memory, ['limit', 'reservation', 'kernel', 'kernelTCP']),
    cpu: drop(r.cpu, ['shares', 'quota', 'period']),
    blockIO: drop(r.blockIO, ['weight', 'leafWeight']),
  };
}

export interface LoadCgroupManagerOptions {
  io?: CgroupIo;
}

export class CgroupfsManager implements CgroupManager {
  private readonly saved: CgroupManagerJson;
  private readonly io: CgroupIo;
  private readonly v1?: V1Cgroup;
  private readonly v2?: V2Cgroup;
  private readonly backends: CgroupBackend[];

  constructor(state: CgroupManagerJson, options: LoadCgroupManagerOptions = {}) {
    this.saved = structuredClone(state);
    this.io = options.io ?? kernelIo;
    if (state.v1.length) this.v1 = new V1Cgroup(state.v1, this.io);
    if (state.v2) this.v2 = new V2Cgroup(state.v2.dir, state.v2.mountPoint, state.v2.controllers, this.io);
    this.backends = [this.v1, this.v2].filter((b): b is V1Cgroup | V2Cgroup => b !== undefined);
  }

  get mode(): CgroupMode {
    return this.saved.mode;
  }

  private route(group: Group): CgroupBackend | undefined {
    return this.backends.find((b) => b.serves(group));
  }

  private need(group: Group, field: string): CgroupBackend {
    const b = this.route(group);
    if (b) return b;
    if (group === 'unified') {
      throw new BerthError('FailedPrecondition', `${field}: this host has no cgroup v2 hierarchy`, {
        hint: 'unified keys are cgroup v2 files; remove linux.resources.unified on cgroup v1 hosts',
      });
    }
    throw new BerthError('FailedPrecondition', `${field}: this host has no ${group} cgroup controller`, {
      hint: HOW_TO_GET[group] ?? `enable the ${group} controller on this host or remove the field`,
    });
  }

  paths(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const h of this.saved.v1) for (const c of h.controllers) out[c] = h.dir;
    if (this.saved.v2) out.unified = this.saved.v2.dir;
    return out;
  }

  joinDirs(): string[] {
    return this.backends.flatMap((b) => b.dirs()).filter((d, i, all) => all.indexOf(d) === i);
  }

  procsFiles(): string[] {
    return this.joinDirs().map((d) => `${d}/cgroup.procs`);
  }

  async create(): Promise<void> {
    // A concurrent destroy may remove a shared parent (e.g. <root>/berth) under our feet.
    for (let attempt = 0; ; attempt++) {
      try {
        for (const b of this.backends) this.remember(await b.create());
        return;
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT' || attempt >= 3) {
          throw new BerthError('Internal', `creating cgroup ${this.joinDirs().join(', ')}: ${(err as Error).message}`, {
            cause: err,
            hint: 'check that the cgroup filesystems are mounted read-write and that you are root',
          });
        }
      }
    }
  }

  private remember(created: string[]): void {
    const leaves = new Set(this.joinDirs());
    for (const d of created) {
      if (!leaves.has(d) && !this.saved.removableParents.includes(d)) this.saved.removableParents.push(d);
    }
  }

  apply(resources: Resources, field = 'linux.resources'): Promise<CgroupWarning[]> {
    return this.set(resources, { field, update: false, warnings: [] });
  }

  update(resources: Resources, field = 'linux.resources'): Promise<CgroupWarning[]> {
    return this.set(resources, { field, update: true, warnings: [] });
  }

  private async set(resources: Resources, o: ApplyOptions): Promise<CgroupWarning[]> {
    const r = withoutUnsetZeros(resources);
    const f = o.field;
    if (r.devices) {
      const b = this.route('devices') ?? this.need('devices', `${f}.devices`);
      if (b.kind === 'v2') compileDeviceProgram(r.devices, `${f}.devices`); // validates now, before any write
      await b.devices(r.devices, o);
      this.saved.devices = structuredClone(r.devices);
    }
    const cpu = r.cpu;
    if (cpu && (cpu.cpus !== undefined || cpu.mems !== undefined)) {
      await this.need('cpuset', `${f}.cpu.${cpu.cpus !== undefined ? 'cpus' : 'mems'}`).cpuset(cpu, o);
    }
    if (isSet(r.memory)) await this.need('memory', `${f}.memory`).memory(r.memory!, o);
    if (cpu && isSet({ ...cpu, cpus: undefined, mems: undefined })) await this.need('cpu', `${f}.cpu`).cpu(cpu, o);
    if (r.pids) await this.need('pids', `${f}.pids`).pids(r.pids, o);
    if (isSet(r.blockIO)) await this.need('blkio', `${f}.blockIO`).blockIO(r.blockIO!, o);
    if (r.hugepageLimits?.length) await this.need('hugetlb', `${f}.hugepageLimits`).hugetlb(r.hugepageLimits, o);
    if (r.network) {
      if (r.network.classID !== undefined) this.need('net_cls', `${f}.network.classID`);
      if (r.network.priorities?.length) this.need('net_prio', `${f}.network.priorities`);
      if (this.v1 && isSet(r.network)) await this.v1.network(r.network, o);
    }
    if (r.rdma && Object.keys(r.rdma).length) await this.need('rdma', `${f}.rdma`).rdma(r.rdma, o);
    if (r.unified && Object.keys(r.unified).length) await this.need('unified', `${f}.unified`).unified(r.unified, o);
    return o.warnings;
  }

  deviceProgram(devices?: DeviceCgroup[]): Uint8Array | undefined {
    const rules = devices ?? this.saved.devices;
    if (!rules || !this.v2 || this.route('devices') !== this.v2) return undefined;
    return compileDeviceProgram(rules);
  }

  async stats(): Promise<CgroupStats> {
    const zeroEntry = { limit: 0, usage: 0, max: 0, failcnt: 0 };
    const [usage, throttling, memory, pids, blkio, hugetlb] = await Promise.all([
      this.route('cpuacct')?.cpuUsage() ?? { total: 0, kernel: 0, user: 0 },
      this.route('cpu')?.throttling() ?? { periods: 0, throttledPeriods: 0, throttledTime: 0 },
      this.route('memory')?.memoryStats() ?? {
        cache: 0, usage: zeroEntry, swap: zeroEntry, kernel: zeroEntry, kernelTCP: zeroEntry, raw: {},
      },
      this.route('pids')?.pidsStats() ?? { current: 0, limit: 0 },
      this.route('blkio')?.blkioStats() ?? { ioServiceBytesRecursive: [], ioServicedRecursive: [] },
      this.route('hugetlb')?.hugetlbStats() ?? {},
    ]);
    return { cpu: { usage, throttling }, memory, pids, blkio, hugetlb };
  }

  /** The directory to list processes from: the freezer's when there is one (pause, kill). */
  private processDir(): string {
    const paths = this.paths();
    return paths.freezer ?? paths.pids ?? paths.unified ?? this.joinDirs()[0];
  }

  pids(): Promise<number[]> {
    return collectPids(this.processDir());
  }

  async freeze(): Promise<void> {
    await this.need('freezer', 'pause').setFrozen(true);
  }

  async thaw(): Promise<void> {
    await this.need('freezer', 'resume').setFrozen(false);
  }

  async state(): Promise<FreezerState> {
    return (await this.route('freezer')?.freezerState()) ?? 'thawed';
  }

  async kill(signal: NodeJS.Signals | number): Promise<void> {
    await this.signal(signal);
    // Frozen tasks only act on SIGKILL once thawed (runc does the same for a paused container).
    if ((signal === 'SIGKILL' || signal === 9) && (await this.state()) === 'frozen') await this.thaw();
  }

  private async signal(signal: NodeJS.Signals | number): Promise<void> {
    if ((signal === 'SIGKILL' || signal === 9) && this.v2) {
      try {
        await this.io.write(`${this.v2.dir}/cgroup.kill`, '1');
        return;
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw new BerthError('Internal', `writing ${this.v2.dir}/cgroup.kill: ${errnoOf(err)}`, { cause: err });
      }
    }
    // Without cgroup.kill, a process forked between reading the list and the signals would
    // escape a SIGKILL: go round until the cgroup lists nobody new (bounded).
    const rounds = signal === 'SIGKILL' || signal === 9 ? 20 : 1;
    const signalled = new Set<number>();
    for (let round = 0; round < rounds; round++) {
      const fresh = (await this.pids()).filter((p) => !signalled.has(p));
      if (fresh.length === 0) break;
      for (const pid of fresh) {
        signalled.add(pid);
        try {
          process.kill(pid, signal);
        } catch (err) {
          if (errnoOf(err) !== 'ESRCH') throw new BerthError('Internal', `kill(${pid}, ${signal}): ${errnoOf(err)}`, { cause: err });
        }
      }
    }
  }

  async oomEvents(): Promise<number> {
    return (await this.route('memory')?.oomKills()) ?? 0;
  }

  async destroy(): Promise<void> {
    const errors: unknown[] = [];
    for (const dir of this.joinDirs()) await removeCgroupTree(dir).catch((err: unknown) => errors.push(err));
    // Shared parents go only once empty; another container's cgroup keeps them (EBUSY).
    const parents = [...this.saved.removableParents].sort((a, b) => b.split('/').length - a.split('/').length);
    for (const dir of parents) {
      try {
        rmdirSync(dir);
      } catch (err) {
        if (!['ENOENT', 'EBUSY', 'ENOTEMPTY'].includes(errnoOf(err) ?? '')) errors.push(err);
      }
    }
    if (errors.length) {
      const first = errors[0];
      for (const e of errors.slice(1)) attachCleanupError(first, e);
      throw first;
    }
  }

  toJSON(): CgroupManagerJson {
    return structuredClone(this.saved);
  }
}

/** rmdir a cgroup and any sub-cgroups the container made, leaves first; waits for dying tasks. */
async function removeCgroupTree(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return;
    throw err;
  }
  for (const name of entries) await removeCgroupTree(`${dir}/${name}`);
  for (let i = 0; ; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i >= 200) {
        throw new BerthError('FailedPrecondition', `removing cgroup ${dir}: ${code}`, {
          cause: err,
          hint: code === 'EBUSY' ? 'processes are still in it; kill them first' : undefined,
        });
      }
      await sleep(i < 20 ? 5 : 20);
    }
  }
}

export function loadCgroupManager(json: CgroupManagerJson, options: LoadCgroupManagerOptions = {}): CgroupManager {
  if (json?.format !== 'berth-cgroupfs/1') {
    throw new BerthError('InvalidArgument', `cgroup state: unknown format ${JSON.stringify(json?.format)}`, {
      hint: 'the state was written by another berth version; delete the container and create it again',
    });
  }
  return new CgroupfsManager(json, options);
}
