// cgroup v1: one directory per hierarchy, each carrying one or more controllers.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { BerthError } from '../../errors.js';
import type { BlockIO, Cpu, DeviceCgroup, HugepageLimit, Memory, Network, Pids } from '../spec.js';
import { checkPageSize, type ApplyOptions, type CgroupBackend, type Group, type Rdma } from './backend.js';
import { CgroupDir, readdirOr, writeCpuset, writePids, errnoOf, parseKeyValues, parseNumber, sleep, type CgroupIo } from './cgroupfs.js';
import type { BlkioEntry, CgroupStats, FreezerState, MemoryEntry } from './types.js';

export interface V1Hierarchy {
  controllers: string[];
  dir: string;
}

/** Kernel clock ticks per second as cpuacct.stat counts them (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

export class V1Cgroup implements CgroupBackend {
  readonly kind = 'v1' as const;

  constructor(
    readonly hierarchies: V1Hierarchy[],
    private readonly io: CgroupIo,
  ) {}

  private dirOf(controller: string): string | undefined {
    return this.hierarchies.find((h) => h.controllers.includes(controller))?.dir;
  }

  serves(group: Group): boolean {
    return group !== 'unified' && this.dirOf(group) !== undefined;
  }

  dirFor(group: Group, o: ApplyOptions): CgroupDir {
    const dir = this.dirOf(group);
    if (!dir) throw new Error(`bug: v1 ${group} routed to a host without it`);
    return new CgroupDir(dir, this.io, o.warnings);
  }

  private at(controller: string): CgroupDir | undefined {
    const dir = this.dirOf(controller);
    return dir === undefined ? undefined : new CgroupDir(dir, this.io);
  }

  dirs(): string[] {
    return [...new Set(this.hierarchies.map((h) => h.dir))];
  }

  async create(): Promise<string[]> {
    const perHierarchy = await Promise.all(
      this.hierarchies.map(async (h) => {
        const first = await mkdirRetrying(h.dir);
        const made: string[] = [];
        if (first !== undefined) {
          for (let d = h.dir; ; d = dirname(d)) {
            made.unshift(d);
            if (d === first || d === '/') break;
          }
        }
        // A new cpuset cgroup starts with no cpus and mems, and no task may join it then.
        // Parents may be just as new (made by a concurrent create), so inherit top down.
        if (h.controllers.includes('cpuset')) await inheritCpuset(h.dir, this.io);
        return made;
      }),
    );
    return perHierarchy.flat();
  }

  async memory(m: Memory, o: ApplyOptions): Promise<void> {
    const c = this.dirFor('memory', o);
    const f = `${o.field}.memory`;
    const swap = m.swap === 0 ? undefined : m.swap;
    if (o.update && m.checkBeforeUpdate && m.limit !== undefined && m.limit !== -1) {
      const usage = parseNumber(await c.readOptional('memory.usage_in_bytes'));
      if (m.limit < usage) {
        throw new BerthError('FailedPrecondition', `${f}.limit: ${m.limit} is below the current usage ${usage} of ${c.dir}`, {
          hint: 'raise the limit or drop checkBeforeUpdate',
        });
      }
    }
    if (swap !== undefined && !(await c.exists('memory.memsw.limit_in_bytes'))) {
      if (swap !== -1) {
        throw new BerthError('FailedPrecondition', `${f}.swap: memory.memsw.limit_in_bytes not found in ${c.dir}`, {
          hint: 'swap accounting is off on this host (boot with swapaccount=1) or remove memory.swap',
        });
      }
    } else if (swap !== undefined) {
      if (m.limit !== undefined && m.limit !== -1 && swap !== -1 && swap < m.limit) {
        throw new BerthError('InvalidArgument', `${f}.swap: ${swap} is below memory.limit ${m.limit}`, {
          hint: 'on cgroup v1 swap is the memory+swap total and must be >= limit',
        });
      }
      // memory+swap may never fall below memory: raise memsw first when the limit grows.
      const current = parseNumber(await c.readOptional('memory.limit_in_bytes'));
      const growing = m.limit !== undefined && (m.limit === -1 || m.limit > current);
      if (m.limit !== undefined && !growing) await c.write('memory.limit_in_bytes', m.limit, `${f}.limit`);
      await c.write('memory.memsw.limit_in_bytes', swap, `${f}.swap`);
      if (m.limit !== undefined && growing) await c.write('memory.limit_in_bytes', m.limit, `${f}.limit`);
    }
    if (swap === undefined && m.limit !== undefined) await c.write('memory.limit_in_bytes', m.limit, `${f}.limit`);
    if (m.reservation !== undefined) await c.write('memory.soft_limit_in_bytes', m.reservation, `${f}.reservation`);
    if (m.kernel !== undefined) {
      try {
        await c.write('memory.kmem.limit_in_bytes', m.kernel, `${f}.kernel`);
      } catch (err) {
        c.warn(`${f}.kernel`, `kernel memory limits are not supported by this kernel; ignored (${(err as Error).message})`);
      }
    }
    if (m.kernelTCP !== undefined) await c.write('memory.kmem.tcp.limit_in_bytes', m.kernelTCP, `${f}.kernelTCP`);
    if (m.swappiness !== undefined) {
      if (!Number.isInteger(m.swappiness) || m.swappiness < 0 || m.swappiness > 100) {
        throw new BerthError('InvalidArgument', `${f}.swappiness: ${m.swappiness} is outside 0..100`);
      }
      await c.write('memory.swappiness', m.swappiness, `${f}.swappiness`);
    }
    if (m.disableOOMKiller !== undefined) {
      await c.write('memory.oom_control', m.disableOOMKiller ? 1 : 0, `${f}.disableOOMKiller`);
    }
    if (m.useHierarchy !== undefined) {
      try {
        await c.write('memory.use_hierarchy', m.useHierarchy ? 1 : 0, `${f}.useHierarchy`);
      } catch (err) {
        c.warn(`${f}.useHierarchy`, `this kernel always uses the hierarchy; ignored (${(err as Error).message})`);
      }
    }
  }

  async cpu(cpu: Cpu, o: ApplyOptions): Promise<void> {
    const c = this.dirFor('cpu', o);
    const f = `${o.field}.cpu`;
    if (cpu.shares !== undefined) await c.write('cpu.shares', cpu.shares, `${f}.shares`);
    if (cpu.period !== undefined) await c.write('cpu.cfs_period_us', cpu.period, `${f}.period`);
    if (cpu.quota !== undefined) await c.write('cpu.cfs_quota_us', cpu.quota, `${f}.quota`);
    if (cpu.burst !== undefined) await c.write('cpu.cfs_burst_us', cpu.burst, `${f}.burst`);
    if (cpu.realtimePeriod !== undefined) {
      await c.write('cpu.rt_period_us', cpu.realtimePeriod, `${f}.realtimePeriod`, 'this kernel has no CONFIG_RT_GROUP_SCHED');
    }
    if (cpu.realtimeRuntime !== undefined) {
      await c.write('cpu.rt_runtime_us', cpu.realtimeRuntime, `${f}.realtimeRuntime`, 'this kernel has no CONFIG_RT_GROUP_SCHED');
    }
    if (cpu.idle !== undefined) await c.write('cpu.idle', cpu.idle, `${f}.idle`);
  }

  cpuset(cpu: Cpu, o: ApplyOptions): Promise<void> {
    return writeCpuset(this.dirFor('cpuset', o), cpu, o.field);
  }

  pids(p: Pids, o: ApplyOptions): Promise<void> {
    return writePids(this.dirFor('pids', o), p, o.field);
  }

  async blockIO(b: BlockIO, o: ApplyOptions): Promise<void> {
    const c = this.dirFor('blkio', o);
    const f = `${o.field}.blockIO`;
    // CFQ offers blkio.weight*, BFQ blkio.bfq.weight*; with neither there is no weighting.
    const prefix = (await c.exists('blkio.weight')) ? 'blkio.' : (await c.exists('blkio.bfq.weight')) ? 'blkio.bfq.' : undefined;
    const needWeights = (field: string): string => {
      if (prefix === undefined) {
        throw new BerthError('FailedPrecondition', `${field}: neither blkio.weight nor blkio.bfq.weight found in ${c.dir}`, {
          hint: 'no block I/O scheduler with proportional weights (CFQ or BFQ) is active; remove the weight',
        });
      }
      return prefix;
    };
    // 0 means "not set" (runc's reading too): Docker sends weight 0 with every container.
    if (b.weight !== undefined && b.weight !== 0) await c.write(`${needWeights(`${f}.weight`)}weight`, b.weight, `${f}.weight`);
    if (b.leafWeight !== undefined) await leafWeight(c, 'blkio.leaf_weight', String(b.leafWeight), `${f}.leafWeight`);
    for (const [i, d] of (b.weightDevice ?? []).entries()) {
      const df = `${f}.weightDevice[${i}]`;
      if (d.weight !== undefined) {
        await c.write(`${needWeights(`${df}.weight`)}weight_device`, `${d.major}:${d.minor} ${d.weight}`, `${df}.weight`);
      }
      if (d.leafWeight !== undefined) {
        await leafWeight(c, 'blkio.leaf_weight_device', `${d.major}:${d.minor} ${d.leafWeight}`, `${df}.leafWeight`);
      }
    }
    const throttles = [
      ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
      ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
      ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
      ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
    ] as const;
    for (const [key, file] of throttles) {
      for (const [i, d] of (b[key] ?? []).entries()) {
        await c.write(file, `${d.major}:${d.minor} ${d.rate}`, `${f}.${key}[${i}]`);
      }
    }
  }

  async hugetlb(limits: HugepageLimit[], o: ApplyOptions): Promise<void> {
    const c = this.dirFor('hugetlb', o);
    for (const [i, h] of limits.entries()) {
      const field = `${o.field}.hugepageLimits[${i}]`;
      checkPageSize(h.pageSize, `${field}.pageSize`);
      await c.write(`hugetlb.${h.pageSize}.limit_in_bytes`, h.limit, field, `this host has no ${h.pageSize} huge pages`);
    }
  }

  async network(n: Network, o: ApplyOptions): Promise<void> {
    const f = `${o.field}.network`;
    if (n.classID !== undefined) await this.dirFor('net_cls', o).write('net_cls.classid', n.classID, `${f}.classID`);
    for (const [i, p] of (n.priorities ?? []).entries()) {
      await this.dirFor('net_prio', o).write('net_prio.ifpriomap', `${p.name} ${p.priority}`, `${f}.priorities[${i}]`);
    }
  }

  async rdma(r: Rdma, o: ApplyOptions): Promise<void> {
    const c = this.dirFor('rdma', o);
    for (const [dev, line] of rdmaLines(r)) await c.write('rdma.max', line, `${o.field}.rdma["${dev}"]`);
  }

  async devices(rules: DeviceCgroup[], o: ApplyOptions): Promise<void> {
    const c = this.dirFor('devices', o);
    const f = `${o.field}.devices`;
    await c.write('devices.deny', 'a', f);
    for (const [i, r] of rules.entries()) {
      const rule = v1DeviceRule(r, `${f}[${i}]`);
      if (rule === undefined) continue;
      await c.write(r.allow ? 'devices.allow' : 'devices.deny', rule, `${f}[${i}]`);
    }
  }

  async unified(_u: Record<string, string>, o: ApplyOptions): Promise<void> {
    throw new BerthError('FailedPrecondition', `${o.field}.unified: this host has no cgroup v2 hierarchy`, {
      hint: 'unified keys are cgroup v2 files; remove linux.resources.unified on cgroup v1 hosts',
    });
  }

  async cpuUsage(): Promise<CgroupStats['cpu']['usage']> {
    const c = this.at('cpuacct');
    if (!c) return { total: 0, kernel: 0, user: 0 };
    const list = async (file: string): Promise<number[] | undefined> => {
      const text = await c.readOptional(file);
      return text ? text.split(/\s+/).map(Number) : undefined;
    };
    const stat = parseKeyValues(await c.readOptional('cpuacct.stat'));
    const tick = 1e9 / USER_HZ;
    return {
      total: parseNumber(await c.readOptional('cpuacct.usage')),
      percpu: await list('cpuacct.usage_percpu'),
      percpu_kernel: await list('cpuacct.usage_percpu_sys'),
      percpu_user: await list('cpuacct.usage_percpu_user'),
      kernel: (stat.system ?? 0) * tick,
      user: (stat.user ?? 0) * tick,
    };
  }

  async throttling(): Promise<CgroupStats['cpu']['throttling']> {
    const s = parseKeyValues(await this.at('cpu')?.readOptional('cpu.stat'));
    return { periods: s.nr_periods ?? 0, throttledPeriods: s.nr_throttled ?? 0, throttledTime: s.throttled_time ?? 0 };
  }

  async memoryStats(): Promise<CgroupStats['memory']> {
    const c = this.at('memory');
    const entry = async (prefix: string): Promise<MemoryEntry> => ({
      limit: parseNumber(await c?.readOptional(`${prefix}limit_in_bytes`)),
      usage: parseNumber(await c?.readOptional(`${prefix}usage_in_bytes`)),
      max: parseNumber(await c?.readOptional(`${prefix}max_usage_in_bytes`)),
      failcnt: parseNumber(await c?.readOptional(`${prefix}failcnt`)),
    });
    const raw = parseKeyValues(await c?.readOptional('memory.stat'));
    return {
      cache: raw.cache ?? 0,
      usage: await entry('memory.'),
      swap: await entry('memory.memsw.'),
      kernel: await entry('memory.kmem.'),
      kernelTCP: await entry('memory.kmem.tcp.'),
      raw,
    };
  }

  async pidsStats(): Promise<CgroupStats['pids']> {
    const c = this.at('pids');
    const max = await c?.readOptional('pids.max');
    return { current: parseNumber(await c?.readOptional('pids.current')), limit: max === 'max' ? 0 : parseNumber(max) };
  }

  async blkioStats(): Promise<CgroupStats['blkio']> {
    const c = this.at('blkio');
    // CFQ files first, then BFQ, then the throttle layer that always counts.
    const pick = async (name: string): Promise<BlkioEntry[]> => {
      for (const prefix of ['blkio.', 'blkio.bfq.', 'blkio.throttle.']) {
        const entries = parseBlkio(await c?.readOptional(`${prefix}${name}`));
        if (entries.length) return entries;
      }
      return [];
    };
    return { ioServiceBytesRecursive: await pick('io_service_bytes_recursive'), ioServicedRecursive: await pick('io_serviced_recursive') };
  }

  async hugetlbStats(): Promise<CgroupStats['hugetlb']> {
    const c = this.at('hugetlb');
    const out: CgroupStats['hugetlb'] = {};
    if (!c) return out;
    for (const name of readdirOr(c.dir)) {
      const m = /^hugetlb\.([^.]+)\.limit_in_bytes$/.exec(name);
      if (!m) continue;
      out[m[1]] = {
        usage: parseNumber(await c.readOptional(`hugetlb.${m[1]}.usage_in_bytes`)),
        max: parseNumber(await c.readOptional(`hugetlb.${m[1]}.max_usage_in_bytes`)),
        failcnt: parseNumber(await c.readOptional(`hugetlb.${m[1]}.failcnt`)),
      };
    }
    return out;
  }

  async oomKills(): Promise<number> {
    return parseKeyValues(await this.at('memory')?.readOptional('memory.oom_control')).oom_kill ?? 0;
  }

  async setFrozen(frozen: boolean): Promise<void> {
    const dir = this.dirOf('freezer');
    if (!dir) throw new Error('bug: v1 freezer routed to a host without it');
    const c = new CgroupDir(dir, this.io);
    const want = frozen ? 'FROZEN' : 'THAWED';
    // Writing FROZEN again nudges tasks that were mid-syscall; poll until the state settles.
    for (let i = 0; i < 1000; i++) {
      if (i === 0 || (frozen && i % 10 === 0)) await c.write('freezer.state', want, 'freezer.state');
      const state = await c.read('freezer.state');
      if (state === want) return;
      await sleep(i < 20 ? 1 : 10);
    }
    if (frozen) await c.write('freezer.state', 'THAWED', 'freezer.state').catch(() => undefined);
    throw new BerthError('Unavailable', `freezing ${dir}: the cgroup did not reach ${want} in time`, {
      hint: 'a process may be stuck in the kernel (D state); try again',
    });
  }

  async freezerState(): Promise<FreezerState> {
    const state = await this.at('freezer')?.readOptional('freezer.state');
    return state === 'FROZEN' ? 'frozen' : 'thawed';
  }
}

async function leafWeight(c: CgroupDir, file: string, value: string, field: string): Promise<void> {
  if (!(await c.exists(file))) {
    c.warn(field, `${file} is not offered by this kernel (leaf weights were removed); ignored`);
    return;
  }
  await c.write(file, value, field);
}

/** The "type major:minor access" line of a v1 devices rule; undefined when access is "" (a no-op). */
export function v1DeviceRule(r: DeviceCgroup, field: string): string | undefined {
  const type = r.type ?? 'a';
  if (!['a', 'b', 'c'].includes(type)) {
    throw new BerthError('InvalidArgument', `${field}.type: "${type}" is not a device type`, { hint: 'use "a", "c" or "b"' });
  }
  const access = r.access ?? 'rwm';
  if (access === '') return undefined;
  if (!/^[rwm]{1,3}$/.test(access)) throw new BerthError('InvalidArgument', `${field}.access: "${access}" may only hold r, w and m`);
  const num = (v: number | null | undefined): string => (v === undefined || v === null || v === -1 ? '*' : String(v));
  return `${type} ${num(r.major)}:${num(r.minor)} ${access}`;
}

export function rdmaLines(r: Rdma): [string, string][] {
  return Object.entries(r).map(([dev, l]) => {
    const parts = [dev];
    if (l.hcaHandles !== undefined) parts.push(`hca_handle=${l.hcaHandles}`);
    if (l.hcaObjects !== undefined) parts.push(`hca_object=${l.hcaObjects}`);
    return [dev, parts.join(' ')];
  });
}

/** blkio "8:0 Read 123" lines (the "Total" line skipped). */
export function parseBlkio(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const m = /^(\d+):(\d+)\s+(\S+)\s+(\d+)$/.exec(line.trim());
    if (m) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3], value: Number(m[4]) });
  }
  return out;
}

async function inheritCpuset(dir: string, io: CgroupIo, depth = 0): Promise<void> {
  const c = new CgroupDir(dir, io);
  const parent = new CgroupDir(dirname(dir), io);
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    const own = await c.readOptional(file);
    if (own !== '') continue; // set already, or not a cpuset directory
    let value = await parent.readOptional(file);
    if (value === '' && depth < 64) {
      await inheritCpuset(dirname(dir), io, depth + 1);
      value = await parent.readOptional(file);
    }
    if (value) await c.write(file, value, `cgroup ${file}`);
  }
}

/** mkdir -p that survives a concurrent delete removing an empty shared parent meanwhile. */
async function mkdirRetrying(dir: string): Promise<string | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      return mkdirSync(dir, { recursive: true });
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' || attempt >= 3) throw err;
    }
  }
}
