// Until networks exist (issue 5) the API shows Docker's three built-in networks, so that
// `docker network ls` and compose's checks work, and refuses every change.
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { BerthError } from '../../errors.js';
import { HttpError, sendJson } from './reply.js';
import { queryFilters, type ApiContext } from './request.js';
import type { Route } from './router.js';

export interface BuiltinNetwork {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'local';
  Driver: string;
  EnableIPv4: boolean;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: { Subnet?: string; Gateway?: string }[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Containers: Record<string, unknown>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

// Stable ids: clients cache them between calls.
function networkId(name: string): string {
  return createHash('sha256').update(`berth-builtin-network/${name}`).digest('hex');
}

const CREATED = '1970-01-01T00:00:00Z';

export function builtinNetworks(): BuiltinNetwork[] {
  return (['bridge', 'host', 'none'] as const).map((name) => ({
    Name: name,
    Id: networkId(name),
    Created: CREATED,
    Scope: 'local',
    Driver: name === 'none' ? 'null' : name,
    EnableIPv4: name === 'bridge',
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: {},
    Labels: {},
  }));
}

function find(idOrName: string): BuiltinNetwork {
  const nets = builtinNetworks();
  const hit = nets.find((n) => n.Name === idOrName || n.Id === idOrName) ?? (idOrName.length > 0 ? nets.find((n) => n.Id.startsWith(idOrName)) : undefined);
  if (!hit) throw new BerthError('NotFound', `network ${idOrName} not found`, { hint: 'berth has only the built-in networks bridge, host and none until user-defined networks arrive' });
  return hit;
}

function matches(net: BuiltinNetwork, filters: Record<string, string[]>): boolean {
  for (const [key, values] of Object.entries(filters)) {
    if (values.length === 0) continue;
    const ok = values.some((v) => {
      switch (key) {
        case 'name':
          return net.Name.includes(v);
        case 'id':
          return net.Id.startsWith(v);
        case 'driver':
          return net.Driver === v;
        case 'scope':
          return v === 'local';
        case 'type':
          return v === 'builtin';
        case 'label':
        case 'dangling':
          return false;
        default:
          throw new BerthError('InvalidArgument', `invalid filter '${key}' for networks`);
      }
    });
    if (!ok) return false;
  }
  return true;
}

async function list(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const filters = queryFilters(ctx.query);
  sendJson(res, 200, builtinNetworks().filter((n) => matches(n, filters)));
}

async function inspect(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, find(ctx.params['id']!));
}

async function notYet(): Promise<void> {
  throw new HttpError(501, 'networks are not supported yet: berth has only the built-in networks bridge, host and none');
}

async function prune(_ctx: ApiContext, res: ServerResponse): Promise<void> {
  // Built-in networks are never pruned, and there are no others.
  sendJson(res, 200, { NetworksDeleted: [] });
}

export const networkRoutes: Route[] = [
  { method: 'GET', pattern: '/networks', handle: list },
  { method: 'POST', pattern: '/networks/create', handle: notYet },
  { method: 'POST', pattern: '/networks/prune', handle: prune },
  { method: 'GET', pattern: '/networks/{id}', handle: inspect },
  { method: 'DELETE', pattern: '/networks/{id}', handle: notYet },
  { method: 'POST', pattern: '/networks/{id}/connect', handle: notYet },
  { method: 'POST', pattern: '/networks/{id}/disconnect', handle: notYet },
];
