// inspect, list, top, stats: read-only views in Docker's shapes.
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { BerthError } from '../../errors.js';
import { containerPsTable, containerStats as ociStats } from '../../runtime/index.js';
import type { CgroupStats } from '../../runtime/cgroups/types.js';
import { matchLabels } from '../filters.js';
import type { EngineContext } from '../context.js';
import type { ContainerInspect, ContainerStats, ContainerSummary, CpuStats, ListContainersOptions } from '../types.js';
import { summaryPorts } from '../networks.js';
import { execIdsOf } from './exec.js';
import type { ContainerRecord } from './record.js';

export function inspectRecord(ctx: EngineContext, rec: ContainerRecord): ContainerInspect {
  const s = rec.state;
  const dir = ctx.store.dir(rec.id);
  return {
    Id: rec.id,
    Created: rec.created,
    Path: rec.path,
    Args: rec.args,
    State: {
      Status: s.status,
      Running: s.status === 'running' || s.status === 'paused',
      Paused: s.status === 'paused',
      Restarting: s.status === 'restarting',
      OOMKilled: s.oomKilled,
      Dead: s.status === 'dead',
      Pid: s.pid,
      ExitCode: s.exitCode,
      Error: s.error,
      StartedAt: s.startedAt,
      FinishedAt: s.finishedAt,
      Health: s.health ? { Status: s.health.status, FailingStreak: s.health.failingStreak, Log: s.health.log } : undefined,
    },
    Image: rec.image,
    ResolvConfPath: `${dir}/resolv.conf`,
    HostnamePath: `${dir}/hostname`,
    HostsPath: `${dir}/hosts`,
    LogPath: rec.hostConfig.LogConfig?.Type === 'none' ? '' : ctx.store.logPath(rec.id),
    Name: `/${rec.name}`,
    RestartCount: rec.restartCount,
    Driver: 'overlay',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: execIdsOf(rec.id).length ? execIdsOf(rec.id) : null,
    HostConfig: { NetworkMode: 'default', RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, LogConfig: { Type: 'json-file', Config: {} }, ...rec.hostConfig },
    GraphDriver: { Name: 'overlay', Data: { MergedDir: ctx.store.rootfs(rec.id) } },
    Mounts: rec.mounts,
    Config: rec.config,
    NetworkSettings: ctx.networks.settings(rec),
  };
}

export function inspectContainer(ctx: EngineContext, idOrName: string): ContainerInspect {
  return inspectRecord(ctx, ctx.find(idOrName));
}

/** "Up 3 seconds", "Exited (0) 2 minutes ago": Docker's human status. */
export function humanStatus(rec: ContainerRecord, now = Date.now()): string {
  const s = rec.state;
  const ago = (iso: string) => humanDuration(now - Date.parse(iso));
  switch (s.status) {
    case 'running':
      return `Up ${ago(s.startedAt)}${s.health ? ` (${s.health.status === 'starting' ? 'health: starting' : s.health.status})` : ''}`;
    case 'paused':
      return `Up ${ago(s.startedAt)} (Paused)`;
    case 'restarting':
      return `Restarting (${s.exitCode}) ${ago(s.finishedAt)} ago`;
    case 'exited':
      return s.startedAt.startsWith('0001') ? 'Created' : `Exited (${s.exitCode}) ${ago(s.finishedAt)} ago`;
    case 'created':
      return 'Created';
    case 'removing':
      return 'Removal In Progress';
    default:
      return 'Dead';
  }
}

export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  const d = Math.round(h / 24);
  if (d < 14) return `${d} days`;
  if (d < 60) return `${Math.round(d / 7)} weeks`;
  if (d < 730) return `${Math.round(d / 30)} months`;
  return `${Math.round(d / 365)} years`;
}

const LIST_FILTERS = ['id', 'name', 'label', 'status', 'exited', 'ancestor', 'before', 'since', 'volume', 'health', 'network', 'is-task', 'expose', 'publish'];

function matches(ctx: EngineContext, rec: ContainerRecord, f: Record<string, string[]>): boolean {
  const any = (key: string, test: (v: string) => boolean) => !f[key]?.length || f[key]!.some(test);
  if (!any('id', (v) => rec.id.startsWith(v))) return false;
  if (!any('name', (v) => new RegExp(v).test(`/${rec.name}`))) return false;
  if (f.label?.length && !matchLabels(rec.config.Labels ?? {}, f.label)) return false;
  if (!any('status', (v) => rec.state.status === v)) return false;
  if (!any('exited', (v) => rec.state.status === 'exited' && rec.state.exitCode === Number(v))) return false;
  if (!any('ancestor', (v) => rec.imageName === v || rec.image === v || rec.image.startsWith(`sha256:${v}`) || rec.imageName.split(':')[0] === v)) return false;
  if (!any('volume', (v) => rec.mounts.some((m) => m.Name === v || m.Destination === v))) return false;
  if (!any('health', (v) => (rec.state.health?.status ?? 'none') === v)) return false;
  if (f.network?.length) {
    const keys = ctx.networks.networkKeys(rec);
    if (!f.network.some((v) => keys.includes(v))) return false;
  }
  if (f.publish?.length || f.expose?.length) {
    const published = ctx.networks.settings(rec).Ports;
    const exposed = Object.keys(rec.config.ExposedPorts ?? {});
    if (!any('publish', (v) => Object.keys(published).some((k) => portMatches(k, v)))) return false;
    if (!any('expose', (v) => exposed.some((k) => portMatches(k, v)))) return false;
  }
  if (!any('is-task', (v) => v === 'false')) return false;
  for (const key of ['before', 'since'] as const) {
    if (!f[key]?.length) continue;
    const ref = ctx.find(f[key]![0]!);
    const cmp = Date.parse(rec.created) - Date.parse(ref.created);
    if (key === 'before' ? cmp >= 0 : cmp <= 0) return false;
  }
  return true;
}

/** Docker's publish/expose filter values: PORT, PORT/PROTO or START-END[/PROTO] (tcp by default). */
function portMatches(key: string, want: string): boolean {
  const [port, proto = 'tcp'] = key.split('/');
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(want.trim());
  if (!m) return false;
  const n = Number(port);
  return n >= Number(m[1]) && n <= Number(m[2] ?? m[1]) && proto === (m[3]?.toLowerCase() ?? 'tcp');
}

const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];
const HEALTH_STATUSES = ['starting', 'healthy', 'unhealthy', 'none'];

/** Checked before matching, so a typo is refused even when there is nothing to match it against. */
function checkFilterValues(f: Record<string, string[]>): void {
  const bad = (key: string, v: string, hint: string): BerthError => new BerthError('InvalidArgument', `invalid filter '${key}=${v}'`, { hint });
  for (const v of f.status ?? []) if (!STATUSES.includes(v)) throw bad('status', v, `status is one of ${STATUSES.join(', ')}`);
  for (const v of f.health ?? []) if (!HEALTH_STATUSES.includes(v)) throw bad('health', v, `health is one of ${HEALTH_STATUSES.join(', ')}`);
  for (const v of f.exited ?? []) if (!/^-?\d+$/.test(v)) throw bad('exited', v, 'exited takes an integer exit code');
  for (const key of ['publish', 'expose'] as const)
    for (const v of f[key] ?? []) if (!/^\d+(?:-\d+)?(?:\/(tcp|udp|sctp))?$/i.test(v.trim())) throw bad(key, v, `${key} takes PORT[/PROTO] or START-END[/PROTO]`);
  for (const v of f.name ?? []) {
    try {
      new RegExp(v);
    } catch (err) {
      throw new BerthError('InvalidArgument', `invalid filter 'name=${v}': not a regular expression: ${(err as Error).message}`, { cause: err });
    }
  }
}

export function listContainers(ctx: EngineContext, opts: ListContainersOptions): ContainerSummary[] {
  const f = opts.filters ?? {};
  for (const k of Object.keys(f)) if (!LIST_FILTERS.includes(k)) throw new BerthError('InvalidArgument', `invalid filter '${k}'`);
  checkFilterValues(f);
  let recs = [...ctx.containers.values()].sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
  const all = opts.all || (opts.limit !== undefined && opts.limit > 0) || Boolean(f.status?.length) || Boolean(f.exited?.length);
  if (!all) recs = recs.filter((r) => r.state.status === 'running' || r.state.status === 'paused' || r.state.status === 'restarting');
  recs = recs.filter((r) => matches(ctx, r, f));
  if (opts.limit !== undefined && opts.limit > 0) recs = recs.slice(0, opts.limit);
  return recs.map((rec) => {
    const net = ctx.networks.settings(rec);
    return {
      Id: rec.id,
      Names: [`/${rec.name}`],
      Image: rec.imageName,
      ImageID: rec.image,
      Command: [rec.path, ...rec.args].map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' '),
      Created: Math.floor(Date.parse(rec.created) / 1000),
      Ports: summaryPorts(net, rec.config),
      Labels: rec.config.Labels ?? {},
      State: rec.state.status,
      Status: humanStatus(rec),
      HostConfig: { NetworkMode: rec.hostConfig.NetworkMode || 'default' },
      NetworkSettings: { Networks: net.Networks },
      Mounts: rec.mounts,
    };
  });
}

export async function topContainer(ctx: EngineContext, idOrName: string, psArgs = '-ef'): Promise<{ Titles: string[]; Processes: string[][] }> {
  const rec = ctx.find(idOrName);
  if (rec.state.status !== 'running' && rec.state.status !== 'paused') throw new BerthError('Conflict', `Container ${rec.id} is not running`);
  const args = psArgs.trim() ? psArgs.trim().split(/\s+/) : ['-ef'];
  const table = await containerPsTable(ctx.runtime, rec.id, args);
  const lines = table.trimEnd().split('\n');
  const header = lines[0] ?? '';
  const titles = header.trim().split(/\s+/);
  // The last column (the command) may hold spaces: split off the others only.
  const processes = lines.slice(1).map((l) => {
    const parts = l.trim().split(/\s+/);
    return [...parts.slice(0, titles.length - 1), parts.slice(titles.length - 1).join(' ')];
  });
  return { Titles: titles, Processes: processes };
}

/** No limit reads as ~2^63 (v1) or "max": Docker shows the host's memory then. */
function memoryLimit(limit: number | undefined): number {
  return limit === undefined || limit <= 0 || limit >= 2 ** 60 ? totalmem() : Math.min(limit, totalmem());
}

function systemCpuUsage(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const ticks = line.trim().split(/\s+/).slice(1, 8).reduce((n, v) => n + Number(v), 0);
  // USER_HZ is 100 on Linux: ticks → ns.
  return ticks * 10_000_000;
}

function cpuStats(s: CgroupStats | undefined): CpuStats {
  return {
    cpu_usage: { total_usage: s?.cpu.usage.total ?? 0, percpu_usage: s?.cpu.usage.percpu, usage_in_kernelmode: s?.cpu.usage.kernel ?? 0, usage_in_usermode: s?.cpu.usage.user ?? 0 },
    system_cpu_usage: systemCpuUsage(),
    online_cpus: cpus().length,
    throttling_data: { periods: s?.cpu.throttling.periods ?? 0, throttled_periods: s?.cpu.throttling.throttledPeriods ?? 0, throttled_time: s?.cpu.throttling.throttledTime ?? 0 },
  };
}

/**
 * Docker's per-interface counters, read on the host end of each veth (what the host receives
 * the container sent): no need to enter the container's namespace.
 */
function networkStats(endpoints: { ifname: string; hostIfname?: string }[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  const swap: Record<string, string> = { rx: 'tx', tx: 'rx' };
  for (const ep of endpoints) {
    if (!ep.hostIfname) continue;
    const counters: Record<string, number> = {};
    try {
      for (const dir of ['rx', 'tx']) {
        for (const what of ['bytes', 'packets', 'errors', 'dropped']) {
          const text = readFileSync(`/sys/class/net/${ep.hostIfname}/statistics/${dir}_${what}`, 'utf8');
          counters[`${swap[dir]}_${what}`] = Number(text.trim());
        }
      }
    } catch {
      continue; // the veth went with a namespace that is going away
    }
    out[ep.ifname] = counters;
  }
  return out;
}

const EMPTY_CPU: CpuStats = { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: 0, online_cpus: 0, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };

/** Docker's stats: one sample, or one a second until aborted or the container stops. */
export async function* containerStats(ctx: EngineContext, idOrName: string, opts: { stream: boolean; oneShot?: boolean; signal?: AbortSignal }): AsyncIterable<ContainerStats> {
  const rec = ctx.find(idOrName);
  let pre: { read: string; cpu: CpuStats } = { read: '0001-01-01T00:00:00Z', cpu: EMPTY_CPU };
  for (let first = true; ; first = false) {
    const running = rec.state.status === 'running' || rec.state.status === 'paused';
    let raw: CgroupStats | undefined;
    if (running) raw = (await ociStats(ctx.runtime, rec.id).catch(() => undefined))?.data as CgroupStats | undefined;
    const read = new Date().toISOString();
    const cpu = raw ? cpuStats(raw) : EMPTY_CPU;
    // A one-off sample without one-shot takes two readings a second apart (Docker does) so
    // that precpu is real and the CLI can compute a CPU percentage.
    if (first && !opts.stream && !opts.oneShot && running) {
      pre = { read, cpu };
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    const mem = raw?.memory;
    yield {
      read,
      preread: pre.read,
      name: `/${rec.name}`,
      id: rec.id,
      pids_stats: raw ? { current: raw.pids.current, limit: raw.pids.limit || undefined } : {},
      num_procs: 0,
      cpu_stats: cpu,
      precpu_stats: pre.cpu,
      memory_stats: mem ? { usage: mem.usage.usage, limit: memoryLimit(mem.usage.limit), max_usage: mem.usage.max, failcnt: mem.usage.failcnt, stats: mem.raw } : {},
      blkio_stats: raw
        ? {
            io_service_bytes_recursive: raw.blkio.ioServiceBytesRecursive.map((e) => ({ major: e.major, minor: e.minor, op: e.op, value: e.value })),
            io_serviced_recursive: raw.blkio.ioServicedRecursive.map((e) => ({ major: e.major, minor: e.minor, op: e.op, value: e.value })),
          }
        : {},
      storage_stats: {},
      ...(running && rec.sandbox ? { networks: networkStats(rec.sandbox.endpoints) } : {}),
    };
    pre = { read, cpu };
    if (!opts.stream || !running || opts.signal?.aborted) return;
    await new Promise((r) => setTimeout(r, 1000));
    if (opts.signal?.aborted || !ctx.containers.has(rec.id)) return;
  }
}
