// volume create / ls / inspect / rm / prune.
import type { VolumeInfo } from '../../engine/types.js';
import { DaemonError, filtersJson } from './client.js';
import { type Command } from './context.js';
import { renderRows } from './format.js';
import { humanSize } from './format.js';
import { confirm, declined, enc, forEachName, formatInspect } from './output.js';

function keyValues(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const it of items) {
    const eq = it.indexOf('=');
    out[eq < 0 ? it : it.slice(0, eq)] = eq < 0 ? '' : it.slice(eq + 1);
  }
  return out;
}

const create: Command = {
  spec: {
    name: 'volume create',
    usage: '[OPTIONS] [VOLUME]',
    summary: 'Create a volume',
    maxArgs: 1,
    flags: [
      { long: 'driver', short: 'd', kind: 'string', help: 'Specify volume driver name (default "local")' },
      { long: 'label', kind: 'list', help: 'Set metadata for a volume', arg: 'list' },
      { long: 'name', kind: 'string', help: 'Specify volume name' },
      { long: 'opt', short: 'o', kind: 'list', help: 'Set driver specific options', arg: 'map' },
    ],
  },
  async run(ctx, f, args) {
    const name = args[0] ?? f.str('name');
    if (args[0] && f.has('name') && f.str('name') !== args[0]) throw new Error(`conflicting options: either specify --name or provide positional arg, not both`);
    const v = await ctx.client().json<VolumeInfo>('POST', '/volumes/create', {
      body: { Name: name ?? '', Driver: f.str('driver') ?? 'local', DriverOpts: keyValues(f.list('opt')), Labels: keyValues(f.list('label')) },
    });
    ctx.stdout.write(`${v.Name}\n`);
    return 0;
  },
};

const ls: Command = {
  spec: {
    name: 'volume ls',
    usage: '[OPTIONS]',
    summary: 'List volumes',
    maxArgs: 0,
    flags: [
      { long: 'filter', short: 'f', kind: 'list', help: "Provide filter values (e.g. 'dangling=true')", arg: 'filter' },
      { long: 'format', kind: 'string', help: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'" },
      { long: 'quiet', short: 'q', kind: 'bool', help: 'Only display volume names' },
    ],
  },
  async run(ctx, f) {
    const r = await ctx.client().json<{ Volumes: VolumeInfo[] | null; Warnings: string[] | null }>('GET', '/volumes', { query: { filters: filtersJson(f.list('filter')) } });
    const vols = [...(r.Volumes ?? [])].sort((a, b) => a.Name.localeCompare(b.Name));
    const rows = vols.map((v) => ({
      Driver: v.Driver,
      Name: v.Name,
      Mountpoint: v.Mountpoint,
      Scope: v.Scope,
      CreatedAt: v.CreatedAt,
      Labels: Object.entries(v.Labels ?? {})
        .map(([k, val]) => `${k}=${val}`)
        .join(','),
      Links: v.UsageData ? String(v.UsageData.RefCount) : 'N/A',
      Size: v.UsageData && v.UsageData.Size >= 0 ? humanSize(v.UsageData.Size, 3) : 'N/A',
      Availability: 'N/A',
      Group: 'N/A',
      Label: (k: unknown) => v.Labels?.[String(k)] ?? '',
    }));
    ctx.stdout.write(
      renderRows(rows, {
        format: f.str('format'),
        columns: [
          ['DRIVER', 'Driver'],
          ['VOLUME NAME', 'Name'],
        ],
        headers: [['MOUNTPOINT', 'Mountpoint'], ['SCOPE', 'Scope'], ['CREATED AT', 'CreatedAt'], ['LABELS', 'Labels'], ['LINKS', 'Links'], ['SIZE', 'Size']],
        quiet: f.bool('quiet'),
        quietField: 'Name',
      }),
    );
    for (const w of r.Warnings ?? []) ctx.stderr.write(`WARNING: ${w}\n`);
    return 0;
  },
};

const inspect: Command = {
  spec: { name: 'volume inspect', usage: '[OPTIONS] VOLUME [VOLUME...]', summary: 'Display detailed information on one or more volumes', minArgs: 1, flags: [{ long: 'format', short: 'f', kind: 'string', help: 'Format output using a custom template' }] },
  async run(ctx, f, args) {
    const found: unknown[] = [];
    let failed = false;
    for (const n of args) {
      try {
        found.push(await ctx.client().json('GET', `/volumes/${enc(n)}`));
      } catch (e) {
        if (!(e instanceof DaemonError) || e.status !== 404) throw e;
        failed = true;
        ctx.stderr.write(`Error: No such volume: ${n}\n`);
      }
    }
    if (found.length || !f.str('format')) ctx.stdout.write(formatInspect(found, f.str('format')));
    return failed ? 1 : 0;
  },
};

const rm: Command = {
  spec: { name: 'volume rm', usage: '[OPTIONS] VOLUME [VOLUME...]', summary: 'Remove one or more volumes', minArgs: 1, flags: [{ long: 'force', short: 'f', kind: 'bool', help: 'Force the removal of one or more volumes' }] },
  run: (ctx, f, args) =>
    forEachName(ctx, args, async (n) => {
      await ctx.client().call('DELETE', `/volumes/${enc(n)}`, { query: { force: f.bool('force') || undefined } });
      return n;
    }),
};

export async function pruneVolumes(ctx: Parameters<Command['run']>[0], all: boolean, filters: string[]): Promise<{ text: string; reclaimed: number }> {
  const r = await ctx.client().json<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/volumes/prune', { query: { filters: filtersJson([...filters, ...(all ? ['all=true'] : [])]) } });
  let text = '';
  if (r.VolumesDeleted?.length) text += `Deleted Volumes:\n${r.VolumesDeleted.join('\n')}\n\n`;
  text += `Total reclaimed space: ${humanSize(r.SpaceReclaimed ?? 0)}\n`;
  return { text, reclaimed: r.SpaceReclaimed ?? 0 };
}

const prune: Command = {
  spec: {
    name: 'volume prune',
    usage: '[OPTIONS]',
    summary: 'Remove unused local volumes',
    maxArgs: 0,
    flags: [
      { long: 'all', short: 'a', kind: 'bool', help: 'Remove all unused volumes, not just anonymous ones' },
      { long: 'filter', kind: 'list', help: "Provide filter values (e.g. 'label=<label>')", arg: 'filter' },
      { long: 'force', short: 'f', kind: 'bool', help: 'Do not prompt for confirmation' },
    ],
  },
  async run(ctx, f) {
    const warning = f.bool('all') ? 'WARNING! This will remove all local volumes not used by at least one container.' : 'WARNING! This will remove anonymous local volumes not used by at least one container.';
    if (!f.bool('force') && !(await confirm(ctx, warning))) throw declined();
    ctx.stdout.write((await pruneVolumes(ctx, f.bool('all'), f.list('filter'))).text);
    return 0;
  },
};

export const commands: Record<string, Command> = { 'volume create': create, 'volume ls': ls, 'volume inspect': inspect, 'volume rm': rm, 'volume prune': prune };
