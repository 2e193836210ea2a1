// berth stats: docker's arithmetic on the stats the daemon reports (CPU % from deltas of
// total and system usage, memory without the inactive page cache), as a table that is redrawn
// every second, or once with --no-stream.
import type { ContainerStats, ContainerSummary } from '../../engine/types.js';
import { jsonLines } from './client.js';
import { CliError, type Command } from './context.js';
import { bytesSize, humanSize, renderRows, shortId, type Row } from './format.js';
import { enc } from './output.js';

export function cpuPercent(s: ContainerStats): number {
  const cpuDelta = s.cpu_stats.cpu_usage.total_usage - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const sysDelta = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const online = s.cpu_stats.online_cpus || s.cpu_stats.cpu_usage.percpu_usage?.length || 0;
  if (sysDelta > 0 && cpuDelta > 0) return (cpuDelta / sysDelta) * online * 100;
  return 0;
}

/** Usage without the inactive page cache: total_inactive_file (cgroup v1) or inactive_file (v2). */
export function memoryUsage(s: ContainerStats): number {
  const m = s.memory_stats;
  const usage = m.usage ?? 0;
  const st = m.stats ?? {};
  const inactive = st.total_inactive_file ?? st.inactive_file;
  if (inactive !== undefined && inactive < usage) return usage - inactive;
  return usage;
}

function blockIo(s: ContainerStats): [number, number] {
  const list = (s.blkio_stats?.io_service_bytes_recursive ?? []) as { op: string; value: number }[];
  let r = 0;
  let w = 0;
  for (const e of list ?? []) {
    const op = e.op.toLowerCase();
    if (op === 'read') r += e.value;
    else if (op === 'write') w += e.value;
  }
  return [r, w];
}

export function statsRow(s: ContainerStats, trunc = true): Row {
  const mem = memoryUsage(s);
  const limit = s.memory_stats.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes ?? 0;
    tx += n.tx_bytes ?? 0;
  }
  const [br, bw] = blockIo(s);
  const id = trunc ? shortId(s.id) : s.id;
  return {
    ID: id,
    Container: id,
    Name: (s.name ?? '').replace(/^\//, '') || '--',
    CPUPerc: `${cpuPercent(s).toFixed(2)}%`,
    MemUsage: `${bytesSize(mem)} / ${bytesSize(limit)}`,
    MemPerc: `${(limit ? (mem / limit) * 100 : 0).toFixed(2)}%`,
    NetIO: `${humanSize(rx, 3)} / ${humanSize(tx, 3)}`,
    BlockIO: `${humanSize(br, 3)} / ${humanSize(bw, 3)}`,
    PIDs: String(s.pids_stats?.current ?? 0),
  };
}

const COLUMNS: [string, string][] = [
  ['CONTAINER ID', 'ID'],
  ['NAME', 'Name'],
  ['CPU %', 'CPUPerc'],
  ['MEM USAGE / LIMIT', 'MemUsage'],
  ['MEM %', 'MemPerc'],
  ['NET I/O', 'NetIO'],
  ['BLOCK I/O', 'BlockIO'],
  ['PIDS', 'PIDs'],
];

const stats: Command = {
  spec: {
    name: 'stats',
    usage: '[OPTIONS] [CONTAINER...]',
    summary: 'Display a live stream of container(s) resource usage statistics',
    flags: [
      { long: 'all', short: 'a', kind: 'bool', help: 'Show all containers (default shows just running)' },
      { long: 'format', kind: 'string', help: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'" },
      { long: 'no-stream', kind: 'bool', help: 'Disable streaming stats and only pull the first result' },
      { long: 'no-trunc', kind: 'bool', help: "Don't truncate output" },
    ],
  },
  async run(ctx, f, args) {
    const client = ctx.client();
    let ids = args;
    if (ids.length === 0) {
      const list = await client.json<ContainerSummary[]>('GET', '/containers/json', { query: { all: f.bool('all') || undefined } });
      ids = list.map((c) => c.Id);
    }
    const trunc = !f.bool('no-trunc');
    const render = (samples: ContainerStats[]): string => renderRows(samples.map((s) => statsRow(s, trunc)), { format: f.str('format'), columns: COLUMNS, headers: [['CONTAINER', 'Container']] });
    if (f.bool('no-stream')) {
      const samples: ContainerStats[] = [];
      let failed = false;
      for (const id of ids) {
        try {
          samples.push(await client.json<ContainerStats>('GET', `/containers/${enc(id)}/stats`, { query: { stream: false } }));
        } catch (e) {
          if ((e as Error).name !== 'DaemonError') throw e;
          failed = true;
          ctx.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
        }
      }
      ctx.stdout.write(render(samples));
      return failed ? 1 : 0;
    }
    if (ids.length === 0 && !ctx.stdout.isTTY) throw new CliError('no containers to watch (berth stats shows running containers; name some, or use -a)');
    const latest = new Map<string, ContainerStats>();
    const streams = ids.map(async (id) => {
      const res = await client.request('GET', `/containers/${enc(id)}/stats`, { query: { stream: true } });
      for await (const s of jsonLines<ContainerStats>(res)) latest.set(id, s);
      latest.delete(id);
    });
    let done = false;
    const all = Promise.allSettled(streams).then(() => (done = true));
    while (!done) {
      await Promise.race([all, new Promise((r) => setTimeout(r, 1000))]);
      const samples = ids.map((id) => latest.get(id)).filter((s): s is ContainerStats => s !== undefined);
      const text = render(samples);
      ctx.stdout.write(ctx.stdout.isTTY ? `\x1b[2J\x1b[H${text}` : text);
    }
    return 0;
  },
};

export const commands: Record<string, Command> = { stats };
