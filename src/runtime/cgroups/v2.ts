// cgroup v2: one directory in the unified hierarchy; controllers are enabled top-down
// through each parent's cgroup.subtree_control.

import { mkdirSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { BerthError } from '../../errors.js';
import type { BlockIO, Cpu, DeviceCgroup, HugepageLimit, Memory, Network, Pids } from '../spec.js';
import { checkPageSize, UINT64_MAX, type ApplyOptions, type CgroupBackend, type Group, type Rdma } from './backend.js';
import { CgroupDir, readdirOr, writeCpuset, writePids, errnoOf, parseKeyValues, parseLimit, parseNumber, sleep, type CgroupIo } from './cgroupfs.js';
import type { BlkioEntry, CgroupStats, FreezerState } from './types.js';
import { rdmaLines } from './v1.js';

/** Groups served from the v2 side by name of the v2 controller (null: no controller needed). */
const V2_CONTROLLER: Partial<Record<Group, string | null>> = {
  memory: 'memory',
  cpu: 'cpu',
  cpuacct: null, // cpu.stat's usage lines exist in every cgroup
  cpuset: 'cpuset',
  pids: 'pids',
  blkio: 'io',
  hugetlb: 'hugetlb',
  rdma: 'rdma',
  devices: null, // an eBPF program, see device-bpf.ts
  freezer: null, // cgroup.freeze
  unified: null,
};

/** cpu.shares (2..262144) → cpu.weight (1..10000), the mapping runc and crun use. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** blkio weight (10..1000) → io.weight (1..10000). */
export function blkioWeightToIoWeight(weight: number): number {
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/**
 * The memory.swap.max value for the spec's memory+swap total, or undefined to leave it.
 * As on v1, an explicit 0 means "unset"; -1 means unlimited.
 */
export function swapToV2(swap: number | undefined, limit: number | undefined, field: string): number | undefined {
  const s = swap ?? 0;
  const l = limit ?? 0;
  if (l === -1 && s === 0) return -1; // "memory unlimited" implies swap unlimited, as on v1
  if (s === 0) return undefined;
  if (s === -1) return -1;
  if (l === 0 || l === -1) {
    throw new BerthError('InvalidArgument', `${field}.swap: a swap limit needs a memory limit`, {
      hint: 'set linux.resources.memory.limit as well',
    });
  }
  if (s < l) {
    throw new BerthError('InvalidArgument', `${field}.swap: ${s} is below memory.limit ${l}`, {
      hint: 'swap is the memory+swap total and must be >= limit',
    });
  }
  return s - l;
}

const maxOr = (v: number): string | number => (v === -1 ? 'max' : v);

export class V2Cgroup implements CgroupBackend {
  readonly kind = 'v2' as const;

  constructor(
    readonly dir: string,
    readonly mountPoint: string,
    /** Controllers the host's cgroup2 root offers (and that v1 does not hold). */
    readonly controllers: string[],
    private readonly io: CgroupIo,
  ) {}

  serves(group: Group): boolean {
    const c = V2_CONTROLLER[group];
    if (c === undefined) return false;
    return c === null || this.controllers.includes(c);
  }

  dirFor(_group: Group, o: ApplyOptions): CgroupDir {
    return new CgroupDir(this.dir, this.io, o.warnings);
  }

  private get c(): CgroupDir {
    return new CgroupDir(this.dir, this.io);
  }

  dirs(): string[] {
    return [this.dir];
  }

  async create(): Promise<string[]> {
    const rel = relative(this.mountPoint, this.dir);
    if (rel.startsWith('..')) throw new Error(`bug: ${this.dir} is outside ${this.mountPoint}`);
    const chain = [this.mountPoint];
    for (const part of rel.split('/').filter(Boolean)) chain.push(`${chain[chain.length - 1]}/${part}`);
    const created: string[] = [];
    for (const [i, d] of chain.entries()) {
      if (i > 0) {
        try {
          mkdirSync(d);
          created.push(d);
        } catch (err) {
          if (errnoOf(err) !== 'EEXIST') throw err;
        }
      }
      if (i < chain.length - 1) await this.enableControllers(d);
    }
    return created;
  }

  /** Enables our controllers for the children of d. A parent holding processes refuses
   * (EBUSY, "no internal processes"); the later write then fails naming the file. */
  private async enableControllers(d: string): Promise<void> {
    const c = new CgroupDir(d, this.io);
    const available = (await c.readOptional('cgroup.controllers'))?.split(/\s+/) ?? [];
    const enabled = (await c.readOptional('cgroup.subtree_control'))?.split(/\s+/) ?? [];
    const missing = this.controllers.filter((x) => available.includes(x) && !enabled.includes(x));
    if (missing.length === 0) return;
    try {
      await this.io.write(c.path('cgroup.subtree_control'), missing.map((x) => `+${x}`).join(' '));
    } catch {
      for (const x of missing) await this.io.write(c.path('cgroup.subtree_control'), `+${x}`).catch(() => undefined);
    }
  }

  async memory(m: Memory, o: ApplyOptions): Promise<void> {
    const c = this.dirFor('memory', o);
    const f = `${o.field}.memory`;
    if (o.update && m.checkBeforeUpdate && m.limit !== undefined && m.limit !== -1) {
      const usage = parseNumber(await c.readOptional('memory.current'));
      if (m.limit < usage) {
        throw new BerthError('FailedPrecondition', `${f}.limit: ${m.limit} is below the current usage ${usage} of ${c.dir}`, {
          hint: 'raise the limit or drop checkBeforeUpdate',
        });
      }
    }
    const swap = swapToV2(m.swap, m.limit, f);
    if (swap !== undefined) {
      if (await c.exists('memory.swap.max')) await c.write('memory.swap.max', maxOr(swap), `${f}.swap`);
      else if (swap !== -1) {
        throw new BerthError('FailedPrecondition', `${f}.swap: memory.swap.max not found in ${c.dir}`, {
          hint: 'swap accounting is off on this host (CONFIG_MEMCG_SWAP / swapaccount=1) or remove memory.swap',
        });
      }
    }
    if (m.limit !== undefined) await c.write('memory.max', maxOr(m.limit), `${f}.limit`);
    if (m.reservation !== undefined) await c.write('memory.low', maxOr(m.reservation), `${f}.reservation`);
    if (m.kernel !== undefined) c.warn(`${f}.kernel`, 'cgroup v2 has no kernel memory limit; ignored');
    if (m.kernelTCP !== undefined) c.warn(`${f}.kernelTCP`, 'cgroup v2 has no kernel TCP memory limit; ignored');
    if (m.swappiness !== undefined && m.swappiness !== -1) c.warn(`${f}.swappiness`, 'cgroup v2 has no per-cgroup swappiness; ignored');
    if (m.disableOOMKiller) c.warn(`${f}.disableOOMKiller`, 'cgroup v2 cannot disable the OOM killer; ignored');
  }

  async cpu(cpu: Cpu, o: ApplyOptions): Promise<void> {
    const c = this.dirFor('cpu', o);
    const f = `${o.field}.cpu`;
    if (cpu.realtimePeriod !== undefined || cpu.realtimeRuntime !== undefined) {
      const which = cpu.realtimeRuntime !== undefined ? 'realtimeRuntime' : 'realtimePeriod';
      throw new BerthError('FailedPrecondition', `${f}.${which}: cgroup v2 has no realtime group scheduling`, {
        hint: 'remove the realtime fields on cgroup v2 hosts',
      });
    }
    if (cpu.shares !== undefined && cpu.shares !== 0) {
      if (cpu.shares < 2 || cpu.shares > 262144) {
        throw new BerthError('InvalidArgument', `${f}.shares: ${cpu.shares} is outside 2..262144`);
      }
      await c.write('cpu.weight', sharesToWeight(cpu.shares), `${f}.shares`);
    }
    if (cpu.quota !== undefined || cpu.period !== undefined) {
      // cpu.max holds both; keep the half the spec leaves out (matters for update).
      const [curQuota, curPeriod] = ((await c.readOptional('cpu.max')) ?? 'max 100000').split(/\s+/);
      const quota = cpu.quota === undefined ? curQuota : cpu.quota > 0 ? String(cpu.quota) : 'max';
      const period = cpu.period ?? curPeriod ?? 100000;
      await c.write('cpu.max', `${quota} ${period}`, `${f}.${cpu.quota !== undefined ? 'quota' : 'period'}`);
    }
    if (cpu.burst !== undefined) await c.write('cpu.max.burst', cpu.burst, `${f}.burst`);
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
    const bfq = await c.exists('io.bfq.weight');
    const weightFile = bfq ? 'io.bfq.weight' : 'io.weight';
    const check = async (field: string): Promise<void> => {
      if (!bfq && !(await c.exists('io.weight'))) {
        throw new BerthError('FailedPrecondition', `${field}: neither io.bfq.weight nor io.weight found in ${c.dir}`, {
          hint: 'no block I/O scheduler with proportional weights (BFQ, or io.cost) is active; remove the weight',
        });
      }
    };
    if (b.weight !== undefined && b.weight !== 0) {
      await check(`${f}.weight`);
      const value = bfq ? String(b.weight) : `default ${blkioWeightToIoWeight(b.weight)}`;
      await c.write(weightFile, value, `${f}.weight`);
    }
    if (b.leafWeight !== undefined) c.warn(`${f}.leafWeight`, 'cgroup v2 has no leaf weights; ignored');
    for (const [i, d] of (b.weightDevice ?? []).entries()) {
      const df = `${f}.weightDevice[${i}]`;
      if (d.weight !== undefined) {
        await check(`${df}.weight`);
        const w = bfq ? d.weight : blkioWeightToIoWeight(d.weight);
        await c.write(weightFile, `${d.major}:${d.minor} ${w}`, `${df}.weight`);
      }
      if (d.leafWeight !== undefined) c.warn(`${df}.leafWeight`, 'cgroup v2 has no leaf weights; ignored');
    }
    const throttles = [
      ['throttleReadBpsDevice', 'rbps'],
      ['throttleWriteBpsDevice', 'wbps'],
      ['throttleReadIOPSDevice', 'riops'],
      ['throttleWriteIOPSDevice', 'wiops'],
    ] as const;
    for (const [key, name] of throttles) {
      for (const [i, d] of (b[key] ?? []).entries()) {
        // v1 writes 0 to lift a throttle; v2 says "max".
        await c.write('io.max', `${d.major}:${d.minor} ${name}=${d.rate === 0 ? 'max' : d.rate}`, `${f}.${key}[${i}]`);
      }
    }
  }

  async hugetlb(limits: HugepageLimit[], o: ApplyOptions): Promise<void> {
    const c = this.dirFor('hugetlb', o);
    for (const [i, h] of limits.entries()) {
      const field = `${o.field}.hugepageLimits[${i}]`;
      checkPageSize(h.pageSize, `${field}.pageSize`);
      await c.write(`hugetlb.${h.pageSize}.max`, h.limit, field, `this host has no ${h.pageSize} huge pages`);
    }
  }

  async network(_n: Network, o: ApplyOptions): Promise<void> {
    throw new BerthError('FailedPrecondition', `${o.field}.network: cgroup v2 has no net_cls or net_prio controller`, {
      hint: 'remove linux.resources.network on cgroup v2 hosts',
    });
  }

  async rdma(r: Rdma, o: ApplyOptions): Promise<void> {
    const c = this.dirFor('rdma', o);
    for (const [dev, line] of rdmaLines(r)) await c.write('rdma.max', line, `${o.field}.rdma["${dev}"]`);
  }

  /** Nothing to write: the rules become an eBPF program (deviceProgram()) attached by berth-exec. */
  async devices(_rules: DeviceCgroup[], _o: ApplyOptions): Promise<void> {}

  async unified(u: Record<string, string>, o: ApplyOptions): Promise<void> {
    const c = this.dirFor('unified', o);
    for (const [key, value] of Object.entries(u)) {
      const field = `${o.field}.unified["${key}"]`;
      if (key.includes('/') || key === '.' || key === '..' || key === '') {
        throw new BerthError('InvalidArgument', `${field}: a key must be a file name in the cgroup directory`);
      }
      await c.write(key, value, field, `no such cgroup v2 file here; is its controller enabled (${dirname(this.dir)}/cgroup.subtree_control)?`);
    }
  }

  private async cpuStat(): Promise<Record<string, number>> {
    return parseKeyValues(await this.c.readOptional('cpu.stat'));
  }

  async cpuUsage(): Promise<CgroupStats['cpu']['usage']> {
    const s = await this.cpuStat();
    return { total: (s.usage_usec ?? 0) * 1000, kernel: (s.system_usec ?? 0) * 1000, user: (s.user_usec ?? 0) * 1000 };
  }

  async throttling(): Promise<CgroupStats['cpu']['throttling']> {
    const s = await this.cpuStat();
    return { periods: s.nr_periods ?? 0, throttledPeriods: s.nr_throttled ?? 0, throttledTime: (s.throttled_usec ?? 0) * 1000 };
  }

  async memoryStats(): Promise<CgroupStats['memory']> {
    const c = this.c;
    const raw = parseKeyValues(await c.readOptional('memory.stat'));
    const events = parseKeyValues(await c.readOptional('memory.events'));
    const usage = parseNumber(await c.readOptional('memory.current'));
    const limit = parseLimit(await c.readOptional('memory.max'), UINT64_MAX);
    const swapUsage = parseNumber(await c.readOptional('memory.swap.current'));
    const swapMax = parseLimit(await c.readOptional('memory.swap.max'), UINT64_MAX);
    const zero = { limit: 0, usage: 0, max: 0, failcnt: 0 };
    return {
      cache: raw.file ?? 0,
      usage: { limit, usage, max: parseNumber(await c.readOptional('memory.peak')), failcnt: events.max ?? 0 },
      // Reported as memory+swap, like v1's memsw, so consumers see one meaning.
      swap: {
        limit: swapMax === UINT64_MAX || limit === UINT64_MAX ? UINT64_MAX : swapMax + limit,
        usage: swapUsage + usage,
        max: 0,
        failcnt: parseKeyValues(await c.readOptional('memory.swap.events')).max ?? 0,
      },
      kernel: zero,
      kernelTCP: { ...zero },
      raw,
    };
  }

  async pidsStats(): Promise<CgroupStats['pids']> {
    return {
      current: parseNumber(await this.c.readOptional('pids.current')),
      limit: parseLimit(await this.c.readOptional('pids.max'), 0),
    };
  }

  async blkioStats(): Promise<CgroupStats['blkio']> {
    const bytes: BlkioEntry[] = [];
    const ios: BlkioEntry[] = [];
    for (const line of ((await this.c.readOptional('io.stat')) ?? '').split('\n')) {
      const [dev, ...kvs] = line.trim().split(/\s+/);
      const m = /^(\d+):(\d+)$/.exec(dev ?? '');
      if (!m) continue;
      const kv = Object.fromEntries(kvs.map((s) => s.split('=')).map(([k, v]) => [k, Number(v)]));
      const at = { major: Number(m[1]), minor: Number(m[2]) };
      bytes.push({ ...at, op: 'Read', value: kv.rbytes ?? 0 }, { ...at, op: 'Write', value: kv.wbytes ?? 0 });
      ios.push({ ...at, op: 'Read', value: kv.rios ?? 0 }, { ...at, op: 'Write', value: kv.wios ?? 0 });
    }
    return { ioServiceBytesRecursive: bytes, ioServicedRecursive: ios };
  }

  async hugetlbStats(): Promise<CgroupStats['hugetlb']> {
    const out: CgroupStats['hugetlb'] = {};
    if (!this.controllers.includes('hugetlb')) return out;
    for (const name of readdirOr(this.dir)) {
      const m = /^hugetlb\.([^.]+)\.current$/.exec(name);
      if (!m) continue;
      out[m[1]] = {
        usage: parseNumber(await this.c.readOptional(name)),
        max: 0,
        failcnt: parseKeyValues(await this.c.readOptional(`hugetlb.${m[1]}.events`)).max ?? 0,
      };
    }
    return out;
  }

  async oomKills(): Promise<number> {
    return parseKeyValues(await this.c.readOptional('memory.events')).oom_kill ?? 0;
  }

  async setFrozen(frozen: boolean): Promise<void> {
    const c = this.c;
    await c.write('cgroup.freeze', frozen ? 1 : 0, 'cgroup.freeze', 'this kernel has no cgroup v2 freezer (Linux 5.2+)');
    for (let i = 0; i < 1000; i++) {
      if ((await this.freezerState()) === (frozen ? 'frozen' : 'thawed')) return;
      await sleep(i < 20 ? 1 : 10);
    }
    if (frozen) await c.write('cgroup.freeze', 0, 'cgroup.freeze').catch(() => undefined);
    throw new BerthError('Unavailable', `${frozen ? 'freezing' : 'thawing'} ${this.dir}: cgroup.events did not report it in time`, {
      hint: 'a process may be stuck in the kernel (D state); try again',
    });
  }

  async freezerState(): Promise<FreezerState> {
    return parseKeyValues(await this.c.readOptional('cgroup.events')).frozen === 1 ? 'frozen' : 'thawed';
  }
}
