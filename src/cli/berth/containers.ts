// Container commands that are one request per container: ps, stop, kill, restart, pause,
// unpause, wait, rm, rename, update, top, port, inspect, prune.
import type { ContainerInspect, ContainerSummary, HostConfig } from '../../engine/types.js';
import { filtersJson } from './client.js';
import { CliError, type Command, type Context } from './context.js';
import { parseCpus, parseRestartPolicy } from './create-options.js';
import { Flags, UsageError, type FlagSpec } from './flags.js';
import { ellipsis, goTimeString, humanDuration, humanSize, parseRamSize, renderRows, shortId, tabulate, type Row } from './format.js';
import { confirm, declined, enc, forEachName, formatInspect } from './output.js';

const FORMAT_FLAG: FlagSpec = { long: 'format', kind: 'string', help: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'" };
const FILTER_FLAG: FlagSpec = { long: 'filter', short: 'f', kind: 'list', help: 'Filter output based on conditions provided', arg: 'filter' };

export const PS_COLUMNS: [string, string][] = [
  ['CONTAINER ID', 'ID'],
  ['IMAGE', 'Image'],
  ['COMMAND', 'Command'],
  ['CREATED', 'RunningFor'],
  ['STATUS', 'Status'],
  ['PORTS', 'Ports'],
  ['NAMES', 'Names'],
];
const PS_HEADERS: [string, string][] = [...PS_COLUMNS, ['SIZE', 'Size'], ['CREATED AT', 'CreatedAt'], ['STATE', 'State'], ['LABELS', 'Labels'], ['MOUNTS', 'Mounts'], ['NETWORKS', 'Networks'], ['LOCAL VOLUMES', 'LocalVolumes']];

/** docker's DisplayablePorts, without range grouping: "0.0.0.0:8080->80/tcp, 443/tcp". */
export function displayPorts(ports: ContainerSummary['Ports']): string {
  const items = [...ports]
    .sort((a, b) => a.PrivatePort - b.PrivatePort || (a.PublicPort ?? 0) - (b.PublicPort ?? 0))
    .map((p) => (p.PublicPort ? `${p.IP ? (p.IP.includes(':') ? `[${p.IP}]` : p.IP) + ':' : ''}${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`));
  return [...new Set(items)].join(', ');
}

/** One `docker ps` row: the fields its templates know, as display strings. */
export function psRow(c: ContainerSummary, opts: { trunc: boolean; now: number }): Row {
  const names = (c.Names ?? []).map((n) => n.replace(/^\//, '')).filter((n) => !opts.trunc || !n.includes('/'));
  let image = c.Image || '<no image>';
  if (opts.trunc) {
    if (image.startsWith('sha256:')) image = shortId(image);
    else image = image.replace(/@sha256:[0-9a-f]+$/, '');
  }
  const labels = c.Labels ?? {};
  const mounts = (c.Mounts ?? []).map((m) => {
    const n = m.Name || m.Source;
    return opts.trunc ? ellipsis(n, 15) : n;
  });
  return {
    ID: opts.trunc ? shortId(c.Id) : c.Id,
    Image: image,
    Command: JSON.stringify(opts.trunc ? ellipsis(c.Command ?? '', 20) : (c.Command ?? '')),
    CreatedAt: goTimeString(c.Created),
    RunningFor: `${humanDuration(opts.now - c.Created * 1000)} ago`,
    Ports: displayPorts(c.Ports ?? []),
    State: c.State,
    Status: c.Status,
    Size: c.SizeRw === undefined && c.SizeRootFs === undefined ? '0B' : `${humanSize(c.SizeRw ?? 0, 3)} (virtual ${humanSize(c.SizeRootFs ?? 0, 3)})`,
    Names: names.join(','),
    Labels: Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    Mounts: mounts.join(','),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {}).join(','),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Type === 'volume').length),
    Label: (name: unknown) => labels[String(name)] ?? '',
  };
}

const ps: Command = {
  spec: {
    name: 'ps',
    usage: '[OPTIONS]',
    summary: 'List containers',
    maxArgs: 0,
    flags: [
      { long: 'all', short: 'a', kind: 'bool', help: 'Show all containers (default shows just running)' },
      FILTER_FLAG,
      FORMAT_FLAG,
      { long: 'last', short: 'n', kind: 'int', help: 'Show n last created containers (includes all states) (default -1)' },
      { long: 'latest', short: 'l', kind: 'bool', help: 'Show the latest created container (includes all states)' },
      { long: 'no-trunc', kind: 'bool', help: "Don't truncate output" },
      { long: 'quiet', short: 'q', kind: 'bool', help: 'Only display container IDs' },
      { long: 'size', short: 's', kind: 'bool', help: 'Display total file sizes' },
    ],
  },
  async run(ctx, f) {
    const last = f.int('last') ?? -1;
    const limit = f.bool('latest') ? 1 : last > 0 ? last : undefined;
    const list = await ctx.client().json<ContainerSummary[]>('GET', '/containers/json', {
      query: { all: f.bool('all') || limit !== undefined || undefined, limit, size: f.bool('size') || undefined, filters: filtersJson(f.list('filter')) },
    });
    const trunc = !f.bool('no-trunc');
    const now = Date.now();
    const rows = list.map((c) => psRow(c, { trunc, now }));
    let format = f.str('format');
    if ((format === undefined || format === 'table') && f.bool('size') && !f.bool('quiet')) format = `table ${PS_COLUMNS.map(([, k]) => `{{.${k}}}`).join('\t')}\t{{.Size}}`;
    ctx.stdout.write(renderRows(rows, { format, columns: PS_COLUMNS, headers: PS_HEADERS, quiet: f.bool('quiet') }));
    return 0;
  },
};

function simple(name: string, summary: string, flags: FlagSpec[], act: (ctx: Context, f: Flags, id: string) => Promise<void>): Command {
  return {
    spec: { name, usage: '[OPTIONS] CONTAINER [CONTAINER...]', summary, flags, minArgs: 1 },
    run: (ctx, f, args) =>
      forEachName(ctx, args, async (n) => {
        await act(ctx, f, n);
        return n;
      }),
  };
}

const stopFlags: FlagSpec[] = [
  { long: 'signal', short: 's', kind: 'string', help: 'Signal to send to the container' },
  { long: 'time', short: 't', kind: 'int', help: 'Seconds to wait before killing the container' },
];

const stop = simple('stop', 'Stop one or more running containers', stopFlags, async (ctx, f, id) => {
  await ctx.client().call('POST', `/containers/${enc(id)}/stop`, { query: { t: f.int('time'), signal: f.str('signal') } });
});
const restart = simple('restart', 'Restart one or more containers', stopFlags, async (ctx, f, id) => {
  await ctx.client().call('POST', `/containers/${enc(id)}/restart`, { query: { t: f.int('time'), signal: f.str('signal') } });
});
const kill = simple('kill', 'Kill one or more running containers', [{ long: 'signal', short: 's', kind: 'string', help: 'Signal to send to the container' }], async (ctx, f, id) => {
  await ctx.client().call('POST', `/containers/${enc(id)}/kill`, { query: { signal: f.str('signal') } });
});
const pause = simple('pause', 'Pause all processes within one or more containers', [], async (ctx, _f, id) => {
  await ctx.client().call('POST', `/containers/${enc(id)}/pause`);
});
const unpause = simple('unpause', 'Unpause all processes within one or more containers', [], async (ctx, _f, id) => {
  await ctx.client().call('POST', `/containers/${enc(id)}/unpause`);
});
const rm = simple(
  'rm',
  'Remove one or more containers',
  [
    { long: 'force', short: 'f', kind: 'bool', help: 'Force the removal of a running container (uses SIGKILL)' },
    { long: 'link', short: 'l', kind: 'bool', help: 'Remove the specified link' },
    { long: 'volumes', short: 'v', kind: 'bool', help: 'Remove anonymous volumes associated with the container' },
  ],
  async (ctx, f, id) => {
    if (f.bool('link')) throw new CliError('--link: links are not supported by berth');
    await ctx.client().call('DELETE', `/containers/${enc(id)}`, { query: { force: f.bool('force') || undefined, v: f.bool('volumes') || undefined } });
  },
);

const wait: Command = {
  spec: { name: 'wait', usage: 'CONTAINER [CONTAINER...]', summary: 'Block until one or more containers stop, then print their exit codes', flags: [], minArgs: 1 },
  run: (ctx, _f, args) =>
    forEachName(ctx, args, async (n) => {
      const r = await ctx.client().json<{ StatusCode: number; Error?: { Message: string } | null }>('POST', `/containers/${enc(n)}/wait`);
      if (r.Error?.Message) throw new Error(r.Error.Message);
      return String(r.StatusCode);
    }),
};

const rename: Command = {
  spec: { name: 'rename', usage: 'CONTAINER NEW_NAME', summary: 'Rename a container', flags: [], minArgs: 2, maxArgs: 2 },
  async run(ctx, _f, [id, name]) {
    if (!name.trim()) throw new CliError('Error: Neither old nor new names may be empty');
    await ctx.client().call('POST', `/containers/${enc(id)}/rename`, { query: { name } });
    return 0;
  },
};

const UPDATE_FLAGS: FlagSpec[] = [
  { long: 'blkio-weight', kind: 'int', help: 'Block IO (relative weight), between 10 and 1000, or 0 to disable' },
  { long: 'cpu-period', kind: 'int', help: 'Limit CPU CFS (Completely Fair Scheduler) period' },
  { long: 'cpu-quota', kind: 'int', help: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
  { long: 'cpu-rt-period', kind: 'int', help: 'Limit the CPU real-time period in microseconds' },
  { long: 'cpu-rt-runtime', kind: 'int', help: 'Limit the CPU real-time runtime in microseconds' },
  { long: 'cpu-shares', short: 'c', kind: 'int', help: 'CPU shares (relative weight)' },
  { long: 'cpus', kind: 'string', help: 'Number of CPUs', arg: 'decimal' },
  { long: 'cpuset-cpus', kind: 'string', help: 'CPUs in which to allow execution (0-3, 0,1)' },
  { long: 'cpuset-mems', kind: 'string', help: 'MEMs in which to allow execution (0-3, 0,1)' },
  { long: 'memory', short: 'm', kind: 'string', help: 'Memory limit', arg: 'bytes' },
  { long: 'memory-reservation', kind: 'string', help: 'Memory soft limit', arg: 'bytes' },
  { long: 'memory-swap', kind: 'string', help: "Swap limit equal to memory plus swap: -1 to enable unlimited swap", arg: 'bytes' },
  { long: 'pids-limit', kind: 'int', help: 'Tune container pids limit (set -1 for unlimited)' },
  { long: 'restart', kind: 'string', help: 'Restart policy to apply when a container exits' },
];

/** `berth update` flags → the body of POST /containers/{id}/update. */
export function buildUpdate(f: Flags, command = 'update'): HostConfig {
  const u: HostConfig = {};
  const bytes = (name: string): number | undefined => {
    const v = f.str(name);
    if (v === undefined) return undefined;
    if (v === '-1') return -1;
    const n = parseRamSize(v);
    if (n === undefined) throw new UsageError(command, `invalid argument "${v}" for "--${name}" flag: invalid size: '${v}'`);
    return n;
  };
  const ints: [string, keyof HostConfig][] = [
    ['blkio-weight', 'BlkioWeight'],
    ['cpu-period', 'CpuPeriod'],
    ['cpu-quota', 'CpuQuota'],
    ['cpu-rt-period', 'CpuRealtimePeriod'],
    ['cpu-rt-runtime', 'CpuRealtimeRuntime'],
    ['cpu-shares', 'CpuShares'],
    ['pids-limit', 'PidsLimit'],
  ];
  for (const [flag, field] of ints) if (f.has(flag)) (u as Record<string, unknown>)[field] = f.int(flag);
  if (f.has('cpus')) u.NanoCpus = parseCpus(f.str('cpus') as string, command);
  if (f.has('cpuset-cpus')) u.CpusetCpus = f.str('cpuset-cpus');
  if (f.has('cpuset-mems')) u.CpusetMems = f.str('cpuset-mems');
  if (f.has('memory')) u.Memory = bytes('memory');
  if (f.has('memory-reservation')) u.MemoryReservation = bytes('memory-reservation');
  if (f.has('memory-swap')) u.MemorySwap = bytes('memory-swap');
  if (f.has('restart')) u.RestartPolicy = parseRestartPolicy(f.str('restart') as string, command);
  return u;
}

const update: Command = {
  spec: { name: 'update', usage: '[OPTIONS] CONTAINER [CONTAINER...]', summary: 'Update configuration of one or more containers', flags: UPDATE_FLAGS, minArgs: 1 },
  async run(ctx, f, args) {
    const body = buildUpdate(f, 'update');
    if (Object.keys(body).length === 0) throw new UsageError('update', 'you must provide one or more flags when using this command', 1);
    return forEachName(ctx, args, async (n) => {
      const r = await ctx.client().json<{ Warnings?: string[] | null }>('POST', `/containers/${enc(n)}/update`, { body });
      for (const w of r?.Warnings ?? []) ctx.stderr.write(`WARNING: ${w}\n`);
      return n;
    });
  },
};

const top: Command = {
  spec: { name: 'top', usage: 'CONTAINER [ps OPTIONS]', summary: 'Display the running processes of a container', flags: [], minArgs: 1, stopAtPositional: true },
  async run(ctx, _f, [id, ...psArgs]) {
    const r = await ctx.client().json<{ Titles: string[]; Processes: string[][] }>('GET', `/containers/${enc(id)}/top`, { query: { ps_args: psArgs.length ? psArgs.join(' ') : undefined } });
    ctx.stdout.write(tabulate([r.Titles, ...r.Processes], { minWidth: 20, padding: 3 }));
    return 0;
  },
};

const port: Command = {
  spec: { name: 'port', usage: 'CONTAINER [PRIVATE_PORT[/PROTO]]', summary: 'List port mappings or a specific mapping for the container', flags: [], minArgs: 1, maxArgs: 2 },
  async run(ctx, _f, [id, want]) {
    const c = await ctx.client().json<ContainerInspect>('GET', `/containers/${enc(id)}/json`);
    const ports = c.NetworkSettings?.Ports ?? {};
    if (want) {
      const key = want.includes('/') ? want : `${want}/tcp`;
      const b = ports[key];
      if (!b || b.length === 0) throw new CliError(`Error: No public port '${key}' published for ${id}`);
      for (const x of b) ctx.stdout.write(`${x.HostIp || '0.0.0.0'}:${x.HostPort}\n`);
      return 0;
    }
    for (const [k, list] of Object.entries(ports)) for (const x of list ?? []) ctx.stdout.write(`${k} -> ${x.HostIp || '0.0.0.0'}:${x.HostPort}\n`);
    return 0;
  },
};

const containerInspect: Command = {
  spec: {
    name: 'container inspect',
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Display detailed information on one or more containers',
    minArgs: 1,
    flags: [
      { long: 'format', short: 'f', kind: 'string', help: 'Format output using a custom template' },
      { long: 'size', short: 's', kind: 'bool', help: 'Display total file sizes' },
    ],
  },
  async run(ctx, f, args) {
    const found: unknown[] = [];
    let failed = false;
    for (const n of args) {
      try {
        found.push(await ctx.client().json('GET', `/containers/${enc(n)}/json`, { query: { size: f.bool('size') || undefined } }));
      } catch (e) {
        if ((e as Error).name !== 'DaemonError' || (e as { status: number }).status !== 404) throw e;
        failed = true;
        ctx.stderr.write(`Error: No such container: ${n}\n`);
      }
    }
    if (found.length || !f.str('format')) ctx.stdout.write(formatInspect(found, f.str('format')));
    return failed ? 1 : 0;
  },
};

export function formatPruneTotal(bytes: number): string {
  return `Total reclaimed space: ${humanSize(bytes)}\n`;
}

const containerPrune: Command = {
  spec: {
    name: 'container prune',
    usage: '[OPTIONS]',
    summary: 'Remove all stopped containers',
    maxArgs: 0,
    flags: [{ long: 'filter', kind: 'list', help: "Provide filter values (e.g. 'until=<timestamp>')", arg: 'filter' }, { long: 'force', short: 'f', kind: 'bool', help: 'Do not prompt for confirmation' }],
  },
  async run(ctx, f) {
    if (!f.bool('force') && !(await confirm(ctx, 'WARNING! This will remove all stopped containers.'))) throw declined();
    const r = await ctx.client().json<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/containers/prune', { query: { filters: filtersJson(f.list('filter')) } });
    if (r.ContainersDeleted?.length) ctx.stdout.write(`Deleted Containers:\n${r.ContainersDeleted.join('\n')}\n\n`);
    ctx.stdout.write(formatPruneTotal(r.SpaceReclaimed ?? 0));
    return 0;
  },
};

const DIFF_KINDS = ['C', 'A', 'D'];

const diff: Command = {
  spec: { name: 'diff', usage: 'CONTAINER', summary: "Inspect changes to files or directories on a container's filesystem", flags: [], minArgs: 1, maxArgs: 1 },
  async run(ctx, _f, [id]) {
    const changes = await ctx.client().json<{ Path: string; Kind: number }[] | null>('GET', `/containers/${enc(id)}/changes`);
    for (const c of changes ?? []) ctx.stdout.write(`${DIFF_KINDS[c.Kind] ?? '?'} ${c.Path}\n`);
    return 0;
  },
};

const commit: Command = {
  spec: {
    name: 'commit',
    usage: '[OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
    summary: "Create a new image from a container's changes",
    minArgs: 1,
    maxArgs: 2,
    flags: [
      { long: 'author', short: 'a', kind: 'string', help: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
      { long: 'change', short: 'c', kind: 'list', help: 'Apply Dockerfile instruction to the created image', arg: 'list' },
      { long: 'message', short: 'm', kind: 'string', help: 'Commit message' },
      { long: 'pause', short: 'p', kind: 'bool', help: 'Pause container during commit (default true)' },
    ],
  },
  async run(ctx, f, [id, ref]) {
    // The repository and tag go separately: the tag is what follows the last colon after the last slash.
    const m = ref ? /^(.*?)(?::([^:/]+))?$/.exec(ref)! : undefined;
    const r = await ctx.client().json<{ Id: string }>('POST', '/commit', {
      query: {
        container: id,
        repo: m?.[1] || undefined,
        tag: m?.[2],
        author: f.str('author'),
        comment: f.str('message'),
        changes: f.list('change'),
        pause: f.bool('pause', true),
      },
    });
    ctx.stdout.write(`${r.Id}\n`);
    return 0;
  },
};

export const commands: Record<string, Command> = {
  diff,
  commit,
  ps,
  stop,
  restart,
  kill,
  pause,
  unpause,
  rm,
  wait,
  rename,
  update,
  top,
  port,
  'container inspect': containerInspect,
  'container prune': containerPrune,
};
