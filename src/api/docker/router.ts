// Route matching for Docker's paths. `{id}` matches one segment; `{name*}` matches one or more
// (image names hold slashes and colons: /images/localhost:5000/a/b:1/json).
import type { ServerResponse } from 'node:http';
import type { StreamSession } from '../../engine/types.js';
import type { ApiContext } from './request.js';

export type Handler = (ctx: ApiContext, res: ServerResponse) => Promise<void>;
/** Prepares a hijacked stream (attach, exec start); null means nothing to stream (detached exec). */
export type HijackHandler = (ctx: ApiContext) => Promise<StreamSession | null>;

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';

export interface Route {
  method: Method;
  pattern: string;
  handle?: Handler;
  hijack?: HijackHandler;
}

interface CompiledRoute {
  route: Route;
  prefix: string[];
  rest: string | null;
  suffix: string[];
}

export type RouteMatch =
  | { kind: 'found'; route: Route; params: Record<string, string> }
  | { kind: 'method-not-allowed' }
  | { kind: 'not-found' };

function compile(route: Route): CompiledRoute {
  const segs = route.pattern.split('/').filter((s) => s !== '');
  const restAt = segs.findIndex((s) => s.endsWith('*}'));
  if (restAt < 0) return { route, prefix: segs, rest: null, suffix: [] };
  return { route, prefix: segs.slice(0, restAt), rest: segs[restAt]!.slice(1, -2), suffix: segs.slice(restAt + 1) };
}

function matchSegment(pattern: string, seg: string, params: Record<string, string>): boolean {
  if (pattern.startsWith('{') && pattern.endsWith('}')) {
    params[pattern.slice(1, -1)] = seg;
    return true;
  }
  return pattern === seg;
}

function matchPath(c: CompiledRoute, segs: string[]): Record<string, string> | null {
  const params: Record<string, string> = {};
  if (c.rest === null) {
    if (segs.length !== c.prefix.length) return null;
    return c.prefix.every((p, i) => matchSegment(p, segs[i]!, params)) ? params : null;
  }
  if (segs.length < c.prefix.length + c.suffix.length + 1) return null;
  if (!c.prefix.every((p, i) => matchSegment(p, segs[i]!, params))) return null;
  const tail = segs.length - c.suffix.length;
  if (!c.suffix.every((p, i) => matchSegment(p, segs[tail + i]!, params))) return null;
  params[c.rest] = segs.slice(c.prefix.length, tail).join('/');
  return params;
}

export class Router {
  private readonly routes: CompiledRoute[];

  /** Earlier routes win: list fixed paths (/images/json) before patterns (/images/{name*}). */
  constructor(routes: Route[]) {
    this.routes = routes.map(compile);
  }

  match(method: string, path: string): RouteMatch {
    let segs: string[];
    try {
      segs = path.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
    } catch {
      return { kind: 'not-found' };
    }
    let pathMatched = false;
    for (const c of this.routes) {
      const params = matchPath(c, segs);
      if (!params) continue;
      if (c.route.method === method) return { kind: 'found', route: c.route, params };
      pathMatched = true;
    }
    return pathMatched ? { kind: 'method-not-allowed' } : { kind: 'not-found' };
  }
}
