// System-wide commands: info, version, events, system df, system prune, and inspect of any object.
import type { ContainerSummary, EngineEvent, ImageSummaryDocker, VersionInfo, VolumeInfo } from '../../engine/types.js';
import { DaemonError, filtersJson, textLines } from './client.js';
import { CliError, type Command, type Context } from './context.js';
import { bytesSize, humanSize, renderRows, rfc3339NanoFixed, unescapeFormat } from './format.js';
import { UsageError } from './flags.js';
import { apiTimestamp } from './logs.js';
import { confirm, declined, enc, formatInspect } from './output.js';
import { parseTemplate, renderTemplate } from './template.js';
import { pruneImages } from './images.js';
import { pruneVolumes } from './volumes.js';

const CLIENT_VERSION = '0.1.0';

function templateOut(format: string, value: unknown): string {
  if (format === 'json') return `${JSON.stringify(value)}\n`;
  return `${renderTemplate(parseTemplate(unescapeFormat(format)), value)}\n`;
}

function clientInfo(): Record<string, string> {
  return { Version: CLIENT_VERSION, ApiVersion: '1.41', NodeVersion: process.version, Os: process.platform, Arch: process.arch };
}

const version: Command = {
  spec: { name: 'version', usage: '[OPTIONS]', summary: 'Show the berth version information', maxArgs: 0, flags: [{ long: 'format', short: 'f', kind: 'string', help: 'Format output using a custom template' }] },
  async run(ctx, f) {
    let server: VersionInfo | undefined;
    let serverErr: Error | undefined;
    try {
      server = await ctx.client().json<VersionInfo>('GET', '/version');
    } catch (e) {
      serverErr = e as Error;
    }
    const format = f.str('format');
    if (format) {
      ctx.stdout.write(templateOut(format, { Client: clientInfo(), Server: server ?? null }));
      if (serverErr) throw serverErr;
      return 0;
    }
    const c = clientInfo();
    let out = `Client:\n Version:           ${c.Version}\n API version:       ${c.ApiVersion}\n Node version:      ${c.NodeVersion}\n OS/Arch:           ${c.Os}/${c.Arch}\n`;
    if (server) {
      out += `\nServer: ${server.Platform?.Name ?? 'berth'}\n Engine:\n  Version:          ${server.Version}\n  API version:      ${server.ApiVersion} (minimum version ${server.MinAPIVersion})\n`;
      if (server.GitCommit) out += `  Git commit:       ${server.GitCommit}\n`;
      if (server.BuildTime) out += `  Built:            ${server.BuildTime}\n`;
      out += `  OS/Arch:          ${server.Os}/${server.Arch}\n`;
      if (server.KernelVersion) out += `  Kernel Version:   ${server.KernelVersion}\n`;
      for (const comp of server.Components ?? []) {
        if (comp.Name === 'Engine') continue;
        out += ` ${comp.Name}:\n  Version:          ${comp.Version}\n`;
        for (const [k, v] of Object.entries(comp.Details ?? {})) out += `  ${`${k}:`.padEnd(18)}${v}\n`;
      }
    }
    ctx.stdout.write(out);
    if (serverErr) throw serverErr;
    return 0;
  },
};

const INFO_LINES: [string, string, ((v: unknown) => string)?][] = [
  ['Server Version', 'ServerVersion'],
  ['Storage Driver', 'Driver'],
  ['Logging Driver', 'LoggingDriver'],
  ['Cgroup Driver', 'CgroupDriver'],
  ['Cgroup Version', 'CgroupVersion'],
  ['Default Runtime', 'DefaultRuntime'],
  ['Init Binary', 'InitBinary'],
  ['Kernel Version', 'KernelVersion'],
  ['Operating System', 'OperatingSystem'],
  ['OSType', 'OSType'],
  ['Architecture', 'Architecture'],
  ['CPUs', 'NCPU'],
  ['Total Memory', 'MemTotal', (v) => bytesSize(Number(v))],
  ['Name', 'Name'],
  ['ID', 'ID'],
  ['Docker Root Dir', 'DockerRootDir'],
  ['Debug Mode', 'Debug'],
  ['Live Restore Enabled', 'LiveRestoreEnabled'],
];

export function formatInfo(info: Record<string, unknown>): string {
  let out = `Client:\n Version:    ${CLIENT_VERSION}\n Context:    default\n\nServer:\n`;
  const n = (k: string): string => String(info[k] ?? 0);
  out += ` Containers: ${n('Containers')}\n  Running: ${n('ContainersRunning')}\n  Paused: ${n('ContainersPaused')}\n  Stopped: ${n('ContainersStopped')}\n Images: ${n('Images')}\n`;
  for (const [label, key, fmt] of INFO_LINES) {
    if (info[key] === undefined || info[key] === '') continue;
    out += ` ${label}: ${fmt ? fmt(info[key]) : String(info[key])}\n`;
  }
  const driverStatus = info.DriverStatus as [string, string][] | null | undefined;
  if (Array.isArray(driverStatus) && driverStatus.length) out = out.replace(/( Storage Driver: .*\n)/, (m) => m + driverStatus.map(([k, v]) => `  ${k}: ${v}\n`).join(''));
  const security = info.SecurityOptions as string[] | null | undefined;
  if (Array.isArray(security) && security.length) out += ` Security Options:\n${security.map((s) => `  ${s.replace(/^name=/, '')}\n`).join('')}`;
  const labels = info.Labels as string[] | null | undefined;
  if (Array.isArray(labels) && labels.length) out += ` Labels:\n${labels.map((l) => `  ${l}\n`).join('')}`;
  for (const w of (info.Warnings as string[] | null | undefined) ?? []) out += `${w}\n`;
  return out;
}

const info: Command = {
  spec: { name: 'info', usage: '[OPTIONS]', summary: 'Display system-wide information', maxArgs: 0, flags: [{ long: 'format', short: 'f', kind: 'string', help: 'Format output using a custom template' }] },
  async run(ctx, f) {
    const i = await ctx.client().json<Record<string, unknown>>('GET', '/info');
    const format = f.str('format');
    ctx.stdout.write(format ? templateOut(format, i) : formatInfo(i));
    return 0;
  },
};

/** docker events' line: time, type, action, actor id and its attributes sorted by name. */
export function formatEvent(e: EngineEvent, timeNano?: bigint): string {
  const attrs = Object.entries(e.Actor?.Attributes ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  const when = rfc3339NanoFixed(timeNano ?? (e.timeNano ? BigInt(Math.round(e.timeNano)) : BigInt(e.time) * 1_000_000_000n));
  return `${when} ${e.Type} ${e.Action} ${e.Actor?.ID ?? ''}${attrs.length ? ` (${attrs.join(', ')})` : ''}\n`;
}

const events: Command = {
  spec: {
    name: 'events',
    usage: '[OPTIONS]',
    summary: 'Get real time events from the server',
    maxArgs: 0,
    flags: [
      { long: 'filter', short: 'f', kind: 'list', help: 'Filter output based on conditions provided', arg: 'filter' },
      { long: 'format', kind: 'string', help: 'Format output using a custom template' },
      { long: 'since', kind: 'string', help: 'Show all events created since timestamp' },
      { long: 'until', kind: 'string', help: 'Stream events until this timestamp' },
    ],
  },
  async run(ctx, f) {
    const now = Date.now();
    const ts = (name: string): string | undefined => {
      const v = f.str(name);
      if (v === undefined) return undefined;
      const t = apiTimestamp(v, now);
      if (t === undefined) throw new UsageError('events', `invalid value for "${name}": failed to parse value as time or duration: "${v}"`);
      return t;
    };
    const res = await ctx.client().request('GET', '/events', { query: { since: ts('since'), until: ts('until'), filters: filtersJson(f.list('filter')) } });
    const format = f.str('format');
    const tpl = format && format !== 'json' ? parseTemplate(unescapeFormat(format)) : undefined;
    for await (const line of textLines(res)) {
      if (format === 'json') {
        ctx.stdout.write(`${line}\n`);
        continue;
      }
      const e = JSON.parse(line) as EngineEvent;
      // timeNano does not fit a double; read its digits from the text
      const nano = /"timeNano":\s*(\d+)/.exec(line);
      ctx.stdout.write(tpl ? `${renderTemplate(tpl, e)}\n` : formatEvent(e, nano ? BigInt(nano[1]) : undefined));
    }
    return 0;
  },
};

interface DiskUsage {
  LayersSize?: number;
  Images?: ImageSummaryDocker[] | null;
  Containers?: ContainerSummary[] | null;
  Volumes?: VolumeInfo[] | null;
  BuildCache?: { Size: number; InUse: boolean; Shared: boolean }[] | null;
}

function reclaimText(reclaimable: number, total: number): string {
  return total > 0 ? `${humanSize(reclaimable)} (${Math.trunc((reclaimable * 100) / total)}%)` : humanSize(reclaimable);
}

/** The rows of `docker system df` from GET /system/df (docker's arithmetic). */
export function diskUsageRows(du: DiskUsage): Record<string, string>[] {
  const images = du.Images ?? [];
  const imgTotal = du.LayersSize ?? 0;
  let imgUsed = 0;
  for (const i of images) if (i.Containers > 0 && i.SharedSize !== -1) imgUsed += (i.VirtualSize ?? i.Size) - i.SharedSize;
  const containers = du.Containers ?? [];
  const isActive = (c: ContainerSummary): boolean => ['running', 'paused', 'restarting'].includes(c.State);
  const ctrSize = containers.reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const ctrReclaim = containers.filter((c) => !isActive(c)).reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const vols = du.Volumes ?? [];
  const volSize = vols.reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const volReclaim = vols.filter((v) => (v.UsageData?.RefCount ?? 0) === 0).reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const cache = du.BuildCache ?? [];
  const cacheSize = cache.reduce((a, c) => a + c.Size, 0);
  const cacheReclaim = cache.filter((c) => !c.InUse && !c.Shared).reduce((a, c) => a + c.Size, 0);
  return [
    { Type: 'Images', TotalCount: String(images.length), Active: String(images.filter((i) => i.Containers > 0).length), Size: humanSize(imgTotal), Reclaimable: reclaimText(imgTotal - imgUsed, imgTotal) },
    { Type: 'Containers', TotalCount: String(containers.length), Active: String(containers.filter(isActive).length), Size: humanSize(ctrSize), Reclaimable: reclaimText(ctrReclaim, ctrSize) },
    { Type: 'Local Volumes', TotalCount: String(vols.length), Active: String(vols.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length), Size: humanSize(volSize), Reclaimable: reclaimText(volReclaim, volSize) },
    { Type: 'Build Cache', TotalCount: String(cache.length), Active: String(cache.filter((c) => c.InUse).length), Size: humanSize(cacheSize), Reclaimable: humanSize(cacheReclaim) },
  ];
}

const df: Command = {
  spec: {
    name: 'system df',
    usage: '[OPTIONS]',
    summary: 'Show berth disk usage',
    maxArgs: 0,
    flags: [
      { long: 'format', kind: 'string', help: 'Format output using a custom template' },
      { long: 'verbose', short: 'v', kind: 'bool', help: 'Show detailed information on space usage' },
    ],
  },
  async run(ctx, f) {
    if (f.bool('verbose')) throw new CliError('--verbose: the detailed view of system df is not supported by berth yet; use berth ps -s, berth images and berth volume ls');
    const du = await ctx.client().json<DiskUsage>('GET', '/system/df');
    const columns: [string, string][] = [
      ['TYPE', 'Type'],
      ['TOTAL', 'TotalCount'],
      ['ACTIVE', 'Active'],
      ['SIZE', 'Size'],
      ['RECLAIMABLE', 'Reclaimable'],
    ];
    ctx.stdout.write(renderRows(diskUsageRows(du), { format: f.str('format'), columns }));
    return 0;
  },
};

const systemPrune: Command = {
  spec: {
    name: 'system prune',
    usage: '[OPTIONS]',
    summary: 'Remove unused data',
    maxArgs: 0,
    flags: [
      { long: 'all', short: 'a', kind: 'bool', help: 'Remove all unused images not just dangling ones' },
      { long: 'filter', kind: 'list', help: "Provide filter values (e.g. 'label=<key>=<value>')", arg: 'filter' },
      { long: 'force', short: 'f', kind: 'bool', help: 'Do not prompt for confirmation' },
      { long: 'volumes', kind: 'bool', help: 'Prune anonymous volumes' },
    ],
  },
  async run(ctx, f) {
    const items = ['all stopped containers', 'all networks not used by at least one container'];
    if (f.bool('volumes')) items.push('all anonymous volumes not used by at least one container');
    items.push(f.bool('all') ? 'all images without at least one container associated to them' : 'all dangling images');
    if (!f.bool('force') && !(await confirm(ctx, `WARNING! This will remove:\n${items.map((i) => `  - ${i}`).join('\n')}\n`))) throw declined();
    const filters = f.list('filter');
    let total = 0;
    const c = await ctx.client().json<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/containers/prune', { query: { filters: filtersJson(filters) } });
    if (c.ContainersDeleted?.length) ctx.stdout.write(`Deleted Containers:\n${c.ContainersDeleted.join('\n')}\n\n`);
    total += c.SpaceReclaimed ?? 0;
    const n = await ctx.client().json<{ NetworksDeleted: string[] | null }>('POST', '/networks/prune', { query: { filters: filtersJson(filters) } });
    if (n.NetworksDeleted?.length) ctx.stdout.write(`Deleted Networks:\n${n.NetworksDeleted.join('\n')}\n\n`);
    if (f.bool('volumes')) {
      const v = await pruneVolumes(ctx, false, filters);
      ctx.stdout.write(v.text.replace(/Total reclaimed space: .*\n$/, ''));
      total += v.reclaimed;
    }
    const i = await pruneImages(ctx, f.bool('all'), filters);
    ctx.stdout.write(i.text.replace(/Total reclaimed space: .*\n$/, ''));
    total += i.reclaimed;
    ctx.stdout.write(`Total reclaimed space: ${humanSize(total)}\n`);
    return 0;
  },
};

async function inspectOne(ctx: Context, name: string, type: string | undefined, size: boolean): Promise<unknown | undefined> {
  const tries: [string, string][] = [
    ['container', `/containers/${enc(name)}/json${size ? '?size=1' : ''}`],
    ['image', `/images/${enc(name)}/json`],
    ['volume', `/volumes/${enc(name)}`],
    ['network', `/networks/${enc(name)}`],
  ];
  for (const [t, p] of tries) {
    if (type && type !== t) continue;
    try {
      return await ctx.client().json('GET', p);
    } catch (e) {
      if (!(e instanceof DaemonError) || (e.status !== 404 && e.status !== 400)) throw e;
    }
  }
  return undefined;
}

const inspect: Command = {
  spec: {
    name: 'inspect',
    usage: '[OPTIONS] NAME|ID [NAME|ID...]',
    summary: 'Return low-level information on berth objects',
    minArgs: 1,
    flags: [
      { long: 'format', short: 'f', kind: 'string', help: 'Format output using a custom template' },
      { long: 'size', short: 's', kind: 'bool', help: 'Display total file sizes if the type is container' },
      { long: 'type', kind: 'string', help: 'Only inspect objects of the given type (container, image, volume, network)' },
    ],
  },
  async run(ctx, f, args) {
    const type = f.str('type');
    if (type && !['container', 'image', 'volume'].includes(type)) throw new CliError(`"${type}" is not a valid value for --type (berth has container, image and volume)`);
    const found: unknown[] = [];
    let failed = false;
    for (const n of args) {
      const o = await inspectOne(ctx, n, type, f.bool('size'));
      if (o === undefined) {
        failed = true;
        ctx.stderr.write(`Error: No such ${type ?? 'object'}: ${n}\n`);
      } else found.push(o);
    }
    if (found.length || !f.str('format')) ctx.stdout.write(formatInspect(found, f.str('format')));
    return failed ? 1 : 0;
  },
};

export const commands: Record<string, Command> = { version, info, events, inspect, 'system df': df, 'system prune': systemPrune };
