// berth logs: the container's json-file log through the API, demultiplexed unless it has a tty.
import type { ContainerInspect } from '../../engine/types.js';
import { type Command } from './context.js';
import { parseGoDuration } from './format.js';
import { UsageError } from './flags.js';
import { enc } from './output.js';
import { FrameDemuxer, STDERR } from './streams.js';

/**
 * docker's timetypes.GetTimestamp: a Go duration ("42m", relative to now), a Unix time
 * ("1700000000.5"), or an RFC 3339 date/time → "seconds.nanoseconds" for the API.
 */
export function apiTimestamp(value: string, nowMs: number): string | undefined {
  if (/^\d+(\.\d{1,9})?$/.test(value)) return value;
  const d = parseGoDuration(value);
  if (d !== undefined) {
    const t = BigInt(nowMs) * 1_000_000n - BigInt(d);
    return `${t / 1_000_000_000n}.${(t % 1_000_000_000n).toString().padStart(9, '0')}`;
  }
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(value);
  if (!m) return undefined;
  const iso = `${m[1]}T${m[2] ?? '00:00:00'}${m[2] && m[2].length === 5 ? ':00' : ''}${m[4] ?? 'Z'}`;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return undefined;
  const frac = (m[3] ?? '.0').slice(1).padEnd(9, '0');
  return `${Math.floor(ms / 1000)}.${frac}`;
}

const logs: Command = {
  spec: {
    name: 'logs',
    usage: '[OPTIONS] CONTAINER',
    summary: 'Fetch the logs of a container',
    minArgs: 1,
    maxArgs: 1,
    flags: [
      { long: 'details', kind: 'bool', help: 'Show extra details provided to logs' },
      { long: 'follow', short: 'f', kind: 'bool', help: 'Follow log output' },
      { long: 'since', kind: 'string', help: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
      { long: 'tail', short: 'n', kind: 'string', help: 'Number of lines to show from the end of the logs (default "all")' },
      { long: 'timestamps', short: 't', kind: 'bool', help: 'Show timestamps' },
      { long: 'until', kind: 'string', help: 'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
    ],
  },
  async run(ctx, f, [id]) {
    const now = Date.now();
    const ts = (name: string): string | undefined => {
      const v = f.str(name);
      if (v === undefined) return undefined;
      const t = apiTimestamp(v, now);
      if (t === undefined) throw new UsageError('logs', `invalid value for "${name}": failed to parse value as time or duration: "${v}"`);
      return t;
    };
    const tail = f.str('tail');
    if (tail !== undefined && tail !== 'all' && !/^-?\d+$/.test(tail)) throw new UsageError('logs', `invalid argument "${tail}" for "-n, --tail" flag: a number or "all" is expected`);
    const client = ctx.client();
    const c = await client.json<ContainerInspect>('GET', `/containers/${enc(id)}/json`);
    const res = await client.request('GET', `/containers/${enc(id)}/logs`, {
      query: { stdout: true, stderr: true, follow: f.bool('follow') || undefined, since: ts('since'), until: ts('until'), timestamps: f.bool('timestamps') || undefined, tail, details: f.bool('details') || undefined },
    });
    if (c.Config?.Tty) {
      for await (const chunk of res) ctx.stdout.write(chunk as Buffer);
    } else {
      const demux = new FrameDemuxer((s, p) => (s === STDERR ? ctx.stderr : ctx.stdout).write(p));
      for await (const chunk of res) demux.push(chunk as Buffer);
    }
    return 0;
  },
};

export const commands: Record<string, Command> = { logs };
