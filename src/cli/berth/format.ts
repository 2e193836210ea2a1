// How the docker CLI prints things: go-units' human durations and sizes, text/tabwriter
// tables, 12-character ids, and the `--format` modes (table, table TEMPLATE, json, TEMPLATE).
import { renderTemplate, parseTemplate } from './template.js';

/** go-units HumanDuration: "Less than a second", "3 seconds", "About a minute", "2 hours", … */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3_600_000 / 24 / 365)} years`;
}

/** Go's %.Ng: N significant digits, no trailing zeros. */
function goG(v: number, precision: number): string {
  return String(Number(v.toPrecision(precision)));
}

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

function scaled(size: number, base: number, units: string[]): [number, string] {
  let i = 0;
  let v = size;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return [v, units[i]];
}

/** go-units HumanSizeWithPrecision (decimal: kB, MB, GB). docker images/ps use precision 3. */
export function humanSize(size: number, precision = 4): string {
  const [v, u] = scaled(size, 1000, DECIMAL_UNITS);
  return `${goG(v, precision)}${u}`;
}

/** go-units BytesSize (binary: KiB, MiB), as `docker stats` prints memory. */
export function bytesSize(size: number): string {
  const [v, u] = scaled(size, 1024, BINARY_UNITS);
  return `${goG(v, 4)}${u}`;
}

/** Sizes as docker's flags take them (go-units RAMInBytes): 512, 64k, 1.5g, 2GiB → bytes (binary). */
export function parseRamSize(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(s.trim());
  if (!m) return undefined;
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 }[m[2].toLowerCase() as 'k'];
  return Math.trunc(Number(m[1]) * mult);
}

/** Go time.ParseDuration for the forms people type: 300ms, 1.5s, 1m30s, 2h. Returns nanoseconds. */
export function parseGoDuration(s: string): number | undefined {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * unit[m[2]];
    end = re.lastIndex;
  }
  if (end === 0 || end !== s.length) return undefined;
  return Math.round(total);
}

export function shortId(id: string): string {
  const bare = id.startsWith('sha256:') ? id.slice(7) : id;
  return bare.slice(0, 12);
}

/** Docker's formatter.Ellipsis: cut to `max` display characters, the last one "…". */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  if (max <= 1) return chars.slice(0, max).join('');
  return chars.slice(0, max - 1).join('') + '…';
}

/**
 * text/tabwriter as docker configures it (minwidth, padding 3, spaces): every column but the
 * last is padded to the widest cell plus the padding.
 */
export function tabulate(rows: string[][], opts: { minWidth?: number; padding?: number } = {}): string {
  const minWidth = opts.minWidth ?? 10;
  const padding = opts.padding ?? 3;
  const widths: number[] = [];
  for (const r of rows)
    for (let c = 0; c < r.length - 1; c++) widths[c] = Math.max(widths[c] ?? minWidth, [...r[c]].length + padding);
  return rows.map((r) => r.map((cell, c) => (c < r.length - 1 ? cell + ' '.repeat(widths[c] - [...cell].length) : cell)).join('') + '\n').join('');
}

/** Go's time.Time.String() for a Unix time (docker ps --format '{{.CreatedAt}}'), in UTC. */
export function goTimeString(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000 UTC`;
}

/** RFC 3339 with a fixed nanosecond fraction, as `docker events` prints times. */
export function rfc3339NanoFixed(timeNano: bigint | number): string {
  const ns = BigInt(timeNano);
  const secs = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return new Date(Number(secs) * 1000).toISOString().replace(/\.\d{3}Z$/, `.${frac}Z`);
}

export type Row = Record<string, unknown>;

/**
 * A `--format` value resolved: the default table, a custom table template, one JSON object
 * per line, or a bare template per row.
 */
export function unescapeFormat(f: string): string {
  return f.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}

/**
 * Renders rows as docker's formatter does. `columns` is the default table: [header, field].
 * Every row object holds the fields as display strings (functions for `.Label "x"`).
 */
export function renderRows(rows: Row[], opts: { format?: string; columns: [string, string][]; headers?: [string, string][]; quiet?: boolean; quietField?: string }): string {
  let f = opts.format ?? '';
  if (opts.quiet && !f) return rows.map((r) => `${String(r[opts.quietField ?? 'ID'])}\n`).join('');
  if (f === '' || f === 'table') f = 'table ' + opts.columns.map(([, field]) => `{{.${field}}}`).join('\t');
  if (f === 'json') return rows.map((r) => `${JSON.stringify(jsonRow(r))}\n`).join('');
  f = unescapeFormat(f);
  if (f.startsWith('table')) {
    const body = f.slice(5).trimStart();
    const tpl = parseTemplate(body);
    const headers = new Map([...opts.columns, ...(opts.headers ?? [])].map(([h, field]) => [field, h]));
    const headerRow = renderTemplate(tpl, new Proxy({}, { get: (_t, k) => headerFor(String(k), headers) }));
    const lines = [headerRow, ...rows.map((r) => renderTemplate(tpl, r))];
    if (opts.quiet) return rows.map((r) => `${String(r[opts.quietField ?? 'ID'])}\n`).join('');
    return tabulate(lines.map((l) => l.split('\t')));
  }
  const tpl = parseTemplate(f);
  return rows.map((r) => `${renderTemplate(tpl, r)}\n`).join('');
}

function headerFor(field: string, known: Map<string, string>): string {
  const h = known.get(field);
  if (h) return h;
  // docker derives a header from the field name: CreatedAt → CREATED AT
  return field.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

function jsonRow(r: Row): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(r).sort()) if (typeof r[k] !== 'function') out[k] = r[k];
  return out;
}
