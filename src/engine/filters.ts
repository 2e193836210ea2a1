// Docker's `filters` query parameter and the small matchers every list/prune endpoint shares.
// Docker clients send two JSON shapes: `{"key":{"value":true}}` (what current clients
// produce) and `{"key":["value"]}` (older clients and hand-written requests); both are
// accepted and normalised to `{ key: [values] }`.
import { BerthError } from '../errors.js';

export type Filters = Record<string, string[]>;

/**
 * Parses the filters parameter. An empty or absent parameter is no filter. A key outside
 * `allowed` is refused with Docker's wording (`invalid filter 'x'`), so a typo never turns
 * into "matches everything".
 */
export function parseFilters(text: string | undefined, allowed: string[]): Filters {
  const out: Filters = {};
  if (text === undefined || text.trim() === '') return out;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BerthError('InvalidArgument', `invalid filters parameter: not JSON: ${(err as Error).message}`, {
      cause: err,
      hint: 'send filters as JSON, e.g. {"label":["key=value"]}',
    });
  }
  if (raw === null) return out;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new BerthError('InvalidArgument', 'invalid filters parameter: expected a JSON object of filter names', {
      hint: 'send filters as JSON, e.g. {"label":["key=value"]}',
    });
  }
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    let values: string[];
    if (Array.isArray(value)) {
      values = value.map((v, i) => {
        if (typeof v !== 'string') throw badValue(key, `element ${i} is ${typeName(v)}, expected a string`);
        return v;
      });
    } else if (value !== null && typeof value === 'object') {
      values = Object.keys(value as Record<string, unknown>);
    } else if (value === null) {
      values = [];
    } else {
      throw badValue(key, `is ${typeName(value)}, expected a list or an object of values`);
    }
    if (!allowed.includes(key)) {
      throw new BerthError('InvalidArgument', `invalid filter '${key}'`, { hint: `supported filters: ${allowed.join(', ') || 'none'}` });
    }
    if (values.length === 0) continue;
    out[key] = [...new Set([...(out[key] ?? []), ...values])];
  }
  return out;
}

function badValue(key: string, what: string): BerthError {
  return new BerthError('InvalidArgument', `invalid filter '${key}': its value ${what}`, {
    hint: 'send filters as JSON, e.g. {"label":["key=value"]}',
  });
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : `a ${typeof v}`;
}

/**
 * True when every wanted entry (`key` or `key=value`) is present in `labels`. No wanted
 * entries matches everything; wanted entries against absent labels match nothing.
 */
export function matchLabels(labels: Record<string, string> | null | undefined, wanted: string[] | undefined): boolean {
  if (!wanted || wanted.length === 0) return true;
  if (!labels) return false;
  return wanted.every((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) return Object.prototype.hasOwnProperty.call(labels, w);
    const key = w.slice(0, eq);
    return Object.prototype.hasOwnProperty.call(labels, key) && labels[key] === w.slice(eq + 1);
  });
}

/**
 * A boolean filter such as `dangling=true` or `all=1`: undefined when absent, refused when it
 * is not one of Docker's spellings or when both true and false are asked for.
 */
export function filterBool(filters: Filters, key: string): boolean | undefined {
  const values = filters[key];
  if (!values || values.length === 0) return undefined;
  const parsed = new Set(
    values.map((v) => {
      const l = v.toLowerCase();
      if (l === 'true' || l === '1') return true;
      if (l === 'false' || l === '0') return false;
      throw new BerthError('InvalidArgument', `invalid filter '${key}=${v}': expected true, false, 1 or 0`);
    }),
  );
  if (parsed.size > 1) throw new BerthError('InvalidArgument', `invalid filter '${key}': both true and false given`);
  return [...parsed][0];
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  'µs': 1e-6,
  'μs': 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};
const DURATION_RE = /^([+-])?((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/;
const DURATION_PART_RE = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/** A Go duration (`10m`, `1h30m`, `1.5s`, `-2h`) in seconds, or undefined if `value` is not one. */
export function parseGoDuration(value: string): number | undefined {
  const m = DURATION_RE.exec(value);
  if (!m) return undefined;
  let seconds = 0;
  for (const part of m[2].matchAll(DURATION_PART_RE)) seconds += Number(part[1]) * DURATION_UNITS[part[2]];
  return m[1] === '-' ? -seconds : seconds;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d+)?)?)?)?([zZ]|[+-]\d{2}:\d{2})?$/;
const UNIX_RE = /^(\d+)(?:\.(\d{1,9}))?$/;

/**
 * A point in time as Docker's `since`/`until` parameters spell it (its GetTimestamp): a Go
 * duration counted back from `now` (`10m` = ten minutes ago), RFC 3339 with or without
 * seconds, fraction and zone (no zone = local time, as Docker), a date, or unix seconds with
 * an optional fraction. Returns unix seconds with fraction.
 */
export function parseTimestamp(value: string, now: number = Date.now()): number {
  const v = value.trim();
  const d = v === '0' ? undefined : parseGoDuration(v);
  if (d !== undefined) return now / 1000 - d;
  const date = DATE_RE.exec(v);
  if (date) {
    const [, y, mo, da, h = '00', mi = '00', s = '00', frac = '', zone] = date;
    const fraction = frac === '' ? 0 : Number(`0${frac}`);
    let ms: number;
    if (zone === undefined) {
      ms = new Date(Number(y), Number(mo) - 1, Number(da), Number(h), Number(mi), Number(s)).getTime();
    } else {
      const z = zone === 'z' || zone === 'Z' ? 'Z' : zone;
      ms = Date.parse(`${y}-${mo}-${da}T${h}:${mi}:${s}${z}`);
    }
    if (Number.isNaN(ms) || Number(mo) > 12 || Number(da) > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
      throw new BerthError('InvalidArgument', `invalid timestamp '${value}': not a valid date`, { hint: 'use RFC 3339 such as 2024-01-31T10:00:00Z' });
    }
    return ms / 1000 + fraction;
  }
  if (UNIX_RE.test(v)) return Number(v);
  throw new BerthError('InvalidArgument', `invalid timestamp '${value}': expected RFC 3339, unix seconds or a duration such as 10m`, {
    hint: 'examples: 2024-01-31T10:00:00Z, 1706695200, 1h30m',
  });
}

/** The `until` filter of the prune endpoints (same spellings as parseTimestamp). */
export function parseUntil(value: string, now: number = Date.now()): number {
  return parseTimestamp(value, now);
}

/**
 * Unix seconds (a number, or the exact `seconds[.nanoseconds]` text Docker clients send) as
 * nanoseconds. A number carries only about microsecond precision; the text form is exact.
 */
export function unixToNanos(value: number | string): bigint {
  if (typeof value === 'string') {
    const m = UNIX_RE.exec(value.trim());
    if (!m) {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new BerthError('InvalidArgument', `invalid unix timestamp '${value}'`, { hint: 'use seconds with an optional fraction, e.g. 1706695200.5' });
      return unixToNanos(n);
    }
    return BigInt(m[1]) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
  }
  if (!Number.isFinite(value)) throw new BerthError('InvalidArgument', `invalid unix timestamp ${value}`);
  const whole = Math.floor(value);
  return BigInt(whole) * 1_000_000_000n + BigInt(Math.round((value - whole) * 1e9));
}

/**
 * An RFC 3339 time (`2026-11-22T02:10:00.123456789Z`, any fraction length, any zone) as
 * nanoseconds since the epoch; undefined when it is not one.
 */
export function rfc3339ToNanos(text: string): bigint | undefined {
  const m = RFC3339_RE.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1].slice(0, 10)}T${m[1].slice(11)}${m[3] === 'z' ? 'Z' : m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0').slice(0, 9) || '0');
}
const RFC3339_RE = /^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?([zZ]|[+-]\d{2}:\d{2})$/;

/** Nanoseconds since the epoch as RFC 3339 with nine fraction digits, UTC (Docker's log and event form). */
export function nanosToRfc3339(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString();
  const frac = (((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${frac}Z`;
}
