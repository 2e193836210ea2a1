// network create / ls / inspect / rm / prune / connect / disconnect, with the docker CLI's flags.
import { isIP } from 'node:net';
import type { EndpointSettings, IpamConfig, NetworkCreateRequest, NetworkInspect } from '../../engine/types.js';
import { DaemonError, filtersJson } from './client.js';
import { CliError, type Command } from './context.js';
import { UsageError } from './flags.js';
import { goTimeString, renderRows } from './format.js';
import { confirm, declined, enc, forEachName, formatInspect } from './output.js';

function keyValues(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const it of items) {
    const eq = it.indexOf('=');
    out[eq < 0 ? it : it.slice(0, eq)] = eq < 0 ? '' : it.slice(eq + 1);
  }
  return out;
}

/** An address as a bigint and its family, for containment checks. */
function toBig(ip: string): { v: bigint; bits: number } | undefined {
  const family = isIP(ip);
  if (family === 4) return { v: ip.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n), bits: 32 };
  if (family !== 6) return undefined;
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return { v: groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g || '0', 16)), 0n), bits: 128 };
}

/** True when `ip` (an address or a CIDR's base) lies inside `cidr`. */
export function inSubnet(ip: string, cidr: string): boolean {
  const [base, lenText] = cidr.split('/');
  const a = toBig(ip.split('/')[0]!);
  const b = toBig(base ?? '');
  const len = Number(lenText);
  if (!a || !b || a.bits !== b.bits || !Number.isInteger(len)) return false;
  const shift = BigInt(a.bits - len);
  return a.v >> shift === b.v >> shift;
}

/**
 * --subnet, --gateway, --ip-range, --aux-address → IPAM.Config, each extra paired with the
 * subnet that contains it (the docker CLI's rules and wording).
 */
export function ipamConfig(opts: { subnets: string[]; gateways: string[]; ranges: string[]; aux: string[] }, cmd: string): IpamConfig[] {
  if (opts.subnets.length === 0) {
    if (opts.gateways.length || opts.ranges.length || opts.aux.length) throw new UsageError(cmd, 'every ip-range or gateway must have a corresponding subnet');
    return [];
  }
  const configs: IpamConfig[] = opts.subnets.map((s) => ({ Subnet: s }));
  const owner = (ip: string, what: string): IpamConfig => {
    const hits = configs.filter((c) => inSubnet(ip, c.Subnet!));
    if (hits.length === 0) throw new UsageError(cmd, `no matching subnet for ${what} ${ip}`);
    if (hits.length > 1) throw new UsageError(cmd, `multiple overlapping subnet configuration is not supported (${what} ${ip})`);
    return hits[0]!;
  };
  for (const r of opts.ranges) {
    const c = owner(r, 'range');
    if (c.IPRange) throw new UsageError(cmd, 'cannot configure multiple ranges on the same subnet');
    c.IPRange = r;
  }
  for (const g of opts.gateways) {
    const c = owner(g, 'gateway');
    if (c.Gateway) throw new UsageError(cmd, 'cannot configure multiple gateways on the same subnet');
    c.Gateway = g;
  }
  for (const [name, ip] of Object.entries(keyValues(opts.aux))) {
    const c = owner(ip, 'aux-address');
    (c.AuxiliaryAddresses ??= {})[name] = ip;
  }
  return configs;
}

const create: Command = {
  spec: {
    name: 'network create',
    usage: '[OPTIONS] NETWORK',
    summary: 'Create a network',
    minArgs: 1,
    maxArgs: 1,
    flags: [
      { long: 'attachable', kind: 'bool', help: 'Enable manual container attachment' },
      { long: 'aux-address', kind: 'list', help: 'Auxiliary IPv4 or IPv6 addresses used by Network driver', arg: 'map' },
      { long: 'driver', short: 'd', kind: 'string', help: 'Driver to manage the Network (default "bridge")' },
      { long: 'gateway', kind: 'list', help: 'IPv4 or IPv6 Gateway for the master subnet', arg: 'strings' },
      { long: 'internal', kind: 'bool', help: 'Restrict external access to the network' },
      { long: 'ip-range', kind: 'list', help: 'Allocate container ip from a sub-range', arg: 'strings' },
      { long: 'ipam-driver', kind: 'string', help: 'IP Address Management Driver (default "default")' },
      { long: 'ipv6', kind: 'bool', help: 'Enable or disable IPv6 networking' },
      { long: 'label', kind: 'list', help: 'Set metadata on a network', arg: 'list' },
      { long: 'opt', short: 'o', kind: 'list', help: 'Set driver specific options', arg: 'map' },
      { long: 'subnet', kind: 'list', help: 'Subnet in CIDR format that represents a network segment', arg: 'strings' },
    ],
  },
  async run(ctx, f, args) {
    const cmd = 'network create';
    const body: NetworkCreateRequest = {
      Name: args[0]!,
      Driver: f.str('driver') ?? 'bridge',
      IPAM: {
        Driver: f.str('ipam-driver') ?? 'default',
        Config: ipamConfig({ subnets: f.list('subnet'), gateways: f.list('gateway'), ranges: f.list('ip-range'), aux: f.list('aux-address') }, cmd),
      },
      Internal: f.bool('internal'),
      Attachable: f.bool('attachable'),
      ...(f.has('ipv6') ? { EnableIPv6: f.bool('ipv6') } : {}),
      Options: keyValues(f.list('opt')),
      Labels: keyValues(f.list('label')),
    };
    const r = await ctx.client().json<{ Id: string; Warning?: string }>('POST', '/networks/create', { body });
    if (r.Warning) ctx.stderr.write(`WARNING: ${r.Warning}\n`);
    ctx.stdout.write(`${r.Id}\n`);
    return 0;
  },
};

/** One row of `network ls`: the docker CLI's fields (Label is a function, as in its templates). */
export function networkRow(n: NetworkInspect, trunc: boolean): Record<string, unknown> {
  return {
    ID: trunc ? n.Id.slice(0, 12) : n.Id,
    Name: n.Name,
    Driver: n.Driver,
    Scope: n.Scope,
    IPv6: String(n.EnableIPv6),
    Internal: String(n.Internal),
    Labels: Object.entries(n.Labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    CreatedAt: goTimeString(Date.parse(n.Created) / 1000),
    Label: (k: unknown) => n.Labels?.[String(k)] ?? '',
  };
}

const ls: Command = {
  spec: {
    name: 'network ls',
    usage: '[OPTIONS]',
    summary: 'List networks',
    maxArgs: 0,
    flags: [
      { long: 'filter', short: 'f', kind: 'list', help: "Provide filter values (e.g. 'driver=bridge')", arg: 'filter' },
      { long: 'format', kind: 'string', help: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'" },
      { long: 'no-trunc', kind: 'bool', help: 'Do not truncate the output' },
      { long: 'quiet', short: 'q', kind: 'bool', help: 'Only display network IDs' },
    ],
  },
  async run(ctx, f) {
    const nets = await ctx.client().json<NetworkInspect[] | null>('GET', '/networks', { query: { filters: filtersJson(f.list('filter')) } });
    const rows = [...(nets ?? [])].sort((a, b) => a.Name.localeCompare(b.Name)).map((n) => networkRow(n, !f.bool('no-trunc')));
    ctx.stdout.write(
      renderRows(rows, {
        format: f.str('format'),
        columns: [
          ['NETWORK ID', 'ID'],
          ['NAME', 'Name'],
          ['DRIVER', 'Driver'],
          ['SCOPE', 'Scope'],
        ],
        headers: [['IPV6', 'IPv6'], ['INTERNAL', 'Internal'], ['LABELS', 'Labels'], ['CREATED AT', 'CreatedAt']],
        quiet: f.bool('quiet'),
        quietField: 'ID',
      }),
    );
    return 0;
  },
};

const inspect: Command = {
  spec: {
    name: 'network inspect',
    usage: '[OPTIONS] NETWORK [NETWORK...]',
    summary: 'Display detailed information on one or more networks',
    minArgs: 1,
    flags: [
      { long: 'format', short: 'f', kind: 'string', help: 'Format output using a custom template' },
      { long: 'verbose', short: 'v', kind: 'bool', help: 'Verbose output for diagnostics' },
    ],
  },
  async run(ctx, f, args) {
    const found: unknown[] = [];
    let failed = false;
    for (const n of args) {
      try {
        found.push(await ctx.client().json('GET', `/networks/${enc(n)}`, { query: { verbose: f.bool('verbose') || undefined } }));
      } catch (e) {
        if (!(e instanceof DaemonError) || e.status !== 404) throw e;
        failed = true;
        ctx.stderr.write(`Error: No such network: ${n}\n`);
      }
    }
    if (found.length || !f.str('format')) ctx.stdout.write(formatInspect(found, f.str('format')));
    return failed ? 1 : 0;
  },
};

const rm: Command = {
  spec: { name: 'network rm', usage: 'NETWORK [NETWORK...]', summary: 'Remove one or more networks', minArgs: 1, flags: [{ long: 'force', short: 'f', kind: 'bool', help: 'Do not error if the network does not exist' }] },
  run: (ctx, f, args) =>
    forEachName(ctx, args, async (n) => {
      try {
        await ctx.client().call('DELETE', `/networks/${enc(n)}`);
      } catch (e) {
        if (f.bool('force') && e instanceof DaemonError && e.status === 404) return undefined;
        throw e;
      }
      return n;
    }),
};

const prune: Command = {
  spec: {
    name: 'network prune',
    usage: '[OPTIONS]',
    summary: 'Remove all unused networks',
    maxArgs: 0,
    flags: [
      { long: 'filter', kind: 'list', help: "Provide filter values (e.g. 'until=<timestamp>')", arg: 'filter' },
      { long: 'force', short: 'f', kind: 'bool', help: 'Do not prompt for confirmation' },
    ],
  },
  async run(ctx, f) {
    if (!f.bool('force') && !(await confirm(ctx, 'WARNING! This will remove all custom networks not used by at least one container.'))) throw declined();
    const r = await ctx.client().json<{ NetworksDeleted: string[] | null }>('POST', '/networks/prune', { query: { filters: filtersJson(f.list('filter')) } });
    if (r.NetworksDeleted?.length) ctx.stdout.write(`Deleted Networks:\n${r.NetworksDeleted.join('\n')}\n\n`);
    return 0;
  },
};

const connect: Command = {
  spec: {
    name: 'network connect',
    usage: '[OPTIONS] NETWORK CONTAINER',
    summary: 'Connect a container to a network',
    minArgs: 2,
    maxArgs: 2,
    flags: [
      { long: 'alias', kind: 'list', help: 'Add network-scoped alias for the container', arg: 'strings' },
      { long: 'driver-opt', kind: 'list', help: 'driver options for the network', arg: 'strings' },
      { long: 'ip', kind: 'string', help: 'IPv4 address (e.g., "172.30.100.104")' },
      { long: 'ip6', kind: 'string', help: 'IPv6 address (e.g., "2001:db8::33")' },
      { long: 'link', kind: 'list', help: 'Add link to another container', arg: 'list' },
      { long: 'link-local-ip', kind: 'list', help: 'Add a link-local address for the container', arg: 'strings' },
    ],
  },
  async run(ctx, f, args) {
    if (f.has('link')) throw new CliError('--link: legacy links are not supported by berth; containers on one user-defined network find each other by name');
    if (f.has('link-local-ip')) throw new CliError('--link-local-ip: link-local addresses are not supported by berth');
    const ip = f.str('ip');
    const ip6 = f.str('ip6');
    const endpoint: EndpointSettings = {
      ...(f.list('alias').length ? { Aliases: f.list('alias') } : {}),
      ...(ip || ip6 ? { IPAMConfig: { ...(ip ? { IPv4Address: ip } : {}), ...(ip6 ? { IPv6Address: ip6 } : {}) } } : {}),
      ...(f.list('driver-opt').length ? { DriverOpts: keyValues(f.list('driver-opt')) } : {}),
    };
    await ctx.client().call('POST', `/networks/${enc(args[0]!)}/connect`, { body: { Container: args[1], EndpointConfig: endpoint } });
    return 0;
  },
};

const disconnect: Command = {
  spec: {
    name: 'network disconnect',
    usage: '[OPTIONS] NETWORK CONTAINER',
    summary: 'Disconnect a container from a network',
    minArgs: 2,
    maxArgs: 2,
    flags: [{ long: 'force', short: 'f', kind: 'bool', help: 'Force the container to disconnect from a network' }],
  },
  async run(ctx, f, args) {
    await ctx.client().call('POST', `/networks/${enc(args[0]!)}/disconnect`, { body: { Container: args[1], Force: f.bool('force') } });
    return 0;
  },
};

export const commands: Record<string, Command> = {
  'network create': create,
  'network ls': ls,
  'network inspect': inspect,
  'network rm': rm,
  'network prune': prune,
  'network connect': connect,
  'network disconnect': disconnect,
};
