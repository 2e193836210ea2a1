// Registry answers turned into BerthErrors that carry the registry's own words (the
// distribution-spec error body: {"errors":[{"code","message","detail"}]}) plus what we were
// doing, so "unauthorized" says which image, which request and what to do about it.
import { BerthError, type BerthErrorOptions, type ErrorCode } from '../../errors.js';

export const LOGIN_HINT = 'log in with docker login or check ~/.docker/config.json';

/**
 * A BerthError from a registry exchange. `status` is the HTTP status when there was one;
 * `tryNext` marks faults of one endpoint (bad bytes, odd answers) that another endpoint
 * (mirror or the registry itself) may not have.
 */
export class RegistryError extends BerthError {
  readonly status?: number;
  readonly tryNext: boolean;

  constructor(code: ErrorCode, message: string, options: BerthErrorOptions & { status?: number; tryNext?: boolean } = {}) {
    super(code, message, options);
    this.status = options.status;
    this.tryNext = options.tryNext ?? false;
  }
}

/** The useful sentence out of an error body: distribution's errors[], or an OAuth/Hub-style one. */
export function registryMessage(body: string): string {
  const text = body.trim();
  if (!text) return '';
  try {
    const doc = JSON.parse(text) as Record<string, unknown>;
    if (Array.isArray(doc.errors) && doc.errors.length > 0) {
      return doc.errors
        .map((e: { code?: unknown; message?: unknown; detail?: unknown }) => {
          const parts = [typeof e.code === 'string' ? e.code : '', typeof e.message === 'string' ? e.message : '']
            .filter(Boolean)
            .join(': ');
          const detail = e.detail === undefined || e.detail === null ? '' : JSON.stringify(e.detail);
          return detail && detail !== '{}' && detail !== '[]' && detail !== '""' ? `${parts} ${detail}` : parts;
        })
        .join('; ');
    }
    for (const key of ['details', 'error_description', 'message', 'error', 'detail']) {
      const v = doc[key];
      if (typeof v === 'string' && v) return v;
    }
  } catch {
    // not JSON: an HTML error page or plain text; keep a short, single-line excerpt
  }
  const line = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

export interface ErrorContext {
  /** What we were doing: 'pull docker.io/library/busybox:latest'. */
  operation: string;
  /** 'GET /v2/library/busybox/manifests/latest' */
  request: string;
  /** 'manifest' | 'blob sha256:…' — names the missing thing for 404s. */
  object: string;
}

export function statusError(status: number, body: string, ctx: ErrorContext, retryAfter?: string): RegistryError {
  const said = registryMessage(body);
  const where = `(${ctx.operation}, ${ctx.request})`;
  const saidPart = said ? `: ${said}` : '';
  if (status === 401 || status === 403) {
    return new RegistryError('FailedPrecondition', `unauthorized${saidPart} ${where}`, { status, hint: LOGIN_HINT });
  }
  if (status === 404) {
    return new RegistryError('NotFound', `${ctx.object} unknown${saidPart} ${where}`, {
      status,
      hint: 'check the name, tag or digest',
    });
  }
  if (status === 429) {
    return new RegistryError('Unavailable', `rate limited by the registry${saidPart} ${where}`, {
      status,
      hint: `wait${retryAfter ? ` (the registry asks for ${retryAfter}s)` : ''} and try again, or log in for a higher limit`,
    });
  }
  if (status >= 500) {
    return new RegistryError('Unavailable', `the registry failed with HTTP ${status}${saidPart} ${where}`, {
      status,
      hint: 'the registry has a problem; try again later',
    });
  }
  const code: ErrorCode = status === 400 || status === 413 || status === 416 ? 'InvalidArgument' : 'FailedPrecondition';
  return new RegistryError(code, `the registry refused with HTTP ${status}${saidPart} ${where}`, { status });
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('ERR_SSL') || code === 'EPROTO')) return true;
  return err instanceof Error && /socket hang up|aborted/.test(err.message) && !isAbort(err);
}

export function isAbort(err: unknown): boolean {
  return (err as { name?: unknown } | undefined)?.name === 'AbortError';
}

export function connectionError(err: unknown, baseUrl: string, ctx: Pick<ErrorContext, 'operation' | 'request'>): RegistryError {
  const code = (err as { code?: unknown }).code;
  const reason = typeof code === 'string' ? `${code}${err instanceof Error && err.message && !err.message.includes(code) ? ` (${err.message})` : ''}` : String(err instanceof Error ? err.message : err);
  const tls = typeof code === 'string' && (code.startsWith('ERR_SSL') || code === 'EPROTO' || code.startsWith('ERR_TLS') || code.includes('CERT'));
  return new RegistryError('Unavailable', `cannot reach ${baseUrl}: ${reason} (${ctx.operation}, ${ctx.request})`, {
    cause: err,
    hint: tls
      ? 'if this registry speaks plain HTTP, add it to the insecure registries'
      : 'is the registry running and reachable from this host?',
  });
}
