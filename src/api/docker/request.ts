// What a route handler gets from a request: path parameters, typed query parameters and the
// body, with Docker's parsing rules (booleans like Go's httputils.BoolValue, filters in both
// JSON shapes) and 400s that name the parameter.
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { BerthError } from '../../errors.js';
import type { Engine } from '../../engine/types.js';

export interface ApiContext {
  engine: Engine;
  method: string;
  /** The path without its /vX.Y prefix. */
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The version the client asked for (the newest supported when unversioned). */
  apiVersion: string;
  headers: IncomingHttpHeaders;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  /** The request body as it arrives (uploads: tar, image archives). */
  body: Readable;
}

/** 16 MiB: far above any JSON body a client sends, low enough to refuse a runaway upload. */
const JSON_BODY_LIMIT = 16 * 1024 * 1024;

export async function readBody(body: Readable, limit = JSON_BODY_LIMIT): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > limit) throw new BerthError('InvalidArgument', `request body is larger than ${limit} bytes`, { hint: 'JSON bodies are small; send uploads to the archive/load endpoints' });
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** The body parsed as JSON; undefined when it is empty. */
export async function readJson(ctx: ApiContext): Promise<unknown> {
  const buf = await readBody(ctx.body);
  const text = buf.toString('utf8').trim();
  if (text === '') return undefined;
  // dockerd refuses a JSON body labelled as something else (a form post from curl -d, say)
  // rather than guess; a body without any Content-Type is let through.
  const type = ctx.headers['content-type'];
  if (type !== undefined && type.split(';')[0]!.trim().toLowerCase() !== 'application/json')
    throw new BerthError('InvalidArgument', `unsupported Content-Type header (${type}) on ${ctx.method} ${ctx.path}: must be 'application/json'`);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new BerthError('InvalidArgument', `invalid JSON in request body of ${ctx.method} ${ctx.path}: ${(err as Error).message}`, { cause: err });
  }
}

export function queryString(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  return v === null ? undefined : v;
}

export function requireQuery(q: URLSearchParams, name: string): string {
  const v = q.get(name);
  if (v === null || v === '') throw new BerthError('InvalidArgument', `query parameter "${name}" is required`);
  return v;
}

/** Go's httputils.BoolValue: anything but "0", "no", "false", "none" is true. */
export function queryBool(q: URLSearchParams, name: string, dflt = false): boolean {
  const raw = q.get(name);
  // An empty value means the default (Go's BoolValueOrDefault), which BoolValue's "" = false agrees with.
  if (raw === null || raw.trim() === '') return dflt;
  const v = raw.trim().toLowerCase();
  return !(v === '0' || v === 'no' || v === 'false' || v === 'none');
}

export function queryInt(q: URLSearchParams, name: string): number | undefined {
  const raw = q.get(name);
  if (raw === null || raw.trim() === '') return undefined;
  const v = raw.trim();
  if (!/^[-+]?[0-9]+$/.test(v)) throw new BerthError('InvalidArgument', `invalid value for query parameter "${name}": ${JSON.stringify(raw)} is not an integer`);
  return Number(v);
}

/** Unix seconds with an optional fraction, as the docker CLI sends since/until. */
export function queryTime(q: URLSearchParams, name: string): number | undefined {
  const raw = q.get(name);
  if (raw === null || raw.trim() === '') return undefined;
  const v = raw.trim();
  if (!/^[-+]?[0-9]+(\.[0-9]+)?$/.test(v)) {
    throw new BerthError('InvalidArgument', `invalid value for query parameter "${name}": ${JSON.stringify(raw)} is not a Unix timestamp`, { hint: 'send seconds since the epoch, e.g. 1700000000.5' });
  }
  return Number(v);
}

/**
 * Docker's `filters` parameter: `{"label":["a=b"]}` or the older `{"label":{"a=b":true}}`
 * that the docker CLI still sends.
 */
export function queryFilters(q: URLSearchParams): Record<string, string[]> {
  const raw = q.get('filters');
  if (raw === null || raw.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new BerthError('InvalidArgument', `invalid filters ${JSON.stringify(raw)}: ${(err as Error).message}`, { cause: err });
  }
  if (parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new BerthError('InvalidArgument', `invalid filters ${JSON.stringify(raw)}: expected a JSON object`);
  const out: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) out[key] = value as string[];
    else if (value !== null && typeof value === 'object' && !Array.isArray(value)) out[key] = Object.keys(value);
    else throw new BerthError('InvalidArgument', `invalid filters: "${key}" must be a list of strings or an object of strings to true`);
  }
  return out;
}

/** h and w of a tty resize. */
export function queryTtySize(q: URLSearchParams): { h: number; w: number } {
  const h = queryInt(q, 'h');
  const w = queryInt(q, 'w');
  if (h === undefined || w === undefined || h < 0 || w < 0) throw new BerthError('InvalidArgument', 'resize: query parameters h and w must be non-negative integers');
  return { h, w };
}
