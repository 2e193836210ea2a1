// `berth run` / `berth create` flags → the body of POST /containers/create, as the docker
// CLI builds it (cli/command/container/opts.go). Values are checked only as far as the docker
// CLI checks them; everything else is the daemon's to accept or refuse by name.
import { isIP } from 'node:net';
import path from 'node:path';
import type { CreateContainerRequest, DeviceMapping, EndpointSettings, HealthConfig, HostConfig, MountSpec, PortBinding, RestartPolicy, Ulimit } from '../../engine/types.js';
import { Flags, UsageError, type FlagSpec } from './flags.js';
import { parseGoDuration, parseRamSize } from './format.js';

const s = (long: string, help: string, short?: string, arg = 'string'): FlagSpec => ({ long, short, kind: 'string', help, arg });
const l = (long: string, help: string, short?: string): FlagSpec => ({ long, short, kind: 'list', help, arg: 'list' });
const b = (long: string, help: string, short?: string): FlagSpec => ({ long, short, kind: 'bool', help });
const i = (long: string, help: string, short?: string): FlagSpec => ({ long, short, kind: 'int', help, arg: 'int' });

/** The flags `create` and `run` share. */
export const CONTAINER_FLAGS: FlagSpec[] = [
  l('add-host', 'Add a custom host-to-IP mapping (host:ip)'),
  l('attach', 'Attach to STDIN, STDOUT or STDERR', 'a'),
  i('blkio-weight', 'Block IO (relative weight), between 10 and 1000, or 0 to disable'),
  l('cap-add', 'Add Linux capabilities'),
  l('cap-drop', 'Drop Linux capabilities'),
  s('cgroup-parent', 'Optional parent cgroup for the container'),
  s('cgroupns', 'Cgroup namespace to use (host|private)'),
  s('cidfile', 'Write the container ID to the file'),
  i('cpu-period', 'Limit CPU CFS (Completely Fair Scheduler) period'),
  i('cpu-quota', 'Limit CPU CFS (Completely Fair Scheduler) quota'),
  i('cpu-rt-period', 'Limit CPU real-time period in microseconds'),
  i('cpu-rt-runtime', 'Limit CPU real-time runtime in microseconds'),
  i('cpu-shares', 'CPU shares (relative weight)', 'c'),
  s('cpus', 'Number of CPUs', undefined, 'decimal'),
  s('cpuset-cpus', 'CPUs in which to allow execution (0-3, 0,1)'),
  s('cpuset-mems', 'MEMs in which to allow execution (0-3, 0,1)'),
  l('device', 'Add a host device to the container'),
  l('device-cgroup-rule', 'Add a rule to the cgroup allowed devices list'),
  b('disable-content-trust', 'Skip image verification (always: berth has no content trust)'),
  l('dns', 'Set custom DNS servers'),
  l('dns-option', 'Set DNS options'),
  l('dns-search', 'Set custom DNS search domains'),
  s('domainname', 'Container NIS domain name'),
  s('entrypoint', 'Overwrite the default ENTRYPOINT of the image'),
  l('env', 'Set environment variables', 'e'),
  l('env-file', 'Read in a file of environment variables'),
  l('expose', 'Expose a port or a range of ports'),
  l('group-add', 'Add additional groups to join'),
  s('health-cmd', 'Command to run to check health'),
  s('health-interval', 'Time between running the check (ms|s|m|h) (default 0s)', undefined, 'duration'),
  i('health-retries', 'Consecutive failures needed to report unhealthy'),
  s('health-start-interval', 'Time between running the check during the start period (ms|s|m|h)', undefined, 'duration'),
  s('health-start-period', 'Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)', undefined, 'duration'),
  s('health-timeout', 'Maximum time to allow one check to run (ms|s|m|h) (default 0s)', undefined, 'duration'),
  s('hostname', 'Container host name', 'h'),
  b('init', 'Run an init inside the container that forwards signals and reaps processes'),
  b('interactive', 'Keep STDIN open even if not attached', 'i'),
  s('ip', 'IPv4 address (e.g., 172.30.100.104)'),
  s('ip6', 'IPv6 address (e.g., 2001:db8::33)'),
  s('ipc', 'IPC mode to use'),
  s('isolation', 'Container isolation technology'),
  s('kernel-memory', 'Kernel memory limit', undefined, 'bytes'),
  l('label', 'Set meta data on a container', 'l'),
  l('label-file', 'Read in a line delimited file of labels'),
  l('link', 'Add link to another container'),
  s('log-driver', 'Logging driver for the container'),
  l('log-opt', 'Log driver options'),
  s('mac-address', 'Container MAC address (e.g., 92:d0:c6:0a:29:33)'),
  s('memory', 'Memory limit', 'm', 'bytes'),
  s('memory-reservation', 'Memory soft limit', undefined, 'bytes'),
  s('memory-swap', "Swap limit equal to memory plus swap: '-1' to enable unlimited swap", undefined, 'bytes'),
  i('memory-swappiness', 'Tune container memory swappiness (0 to 100) (default -1)'),
  l('mount', 'Attach a filesystem mount to the container'),
  s('name', 'Assign a name to the container'),
  s('network', 'Connect a container to a network', undefined, 'network'),
  s('net', 'Connect a container to a network', undefined, 'network'),
  l('network-alias', 'Add network-scoped alias for the container'),
  l('net-alias', 'Add network-scoped alias for the container'),
  b('no-healthcheck', 'Disable any container-specified HEALTHCHECK'),
  b('oom-kill-disable', 'Disable OOM Killer'),
  i('oom-score-adj', "Tune host's OOM preferences (-1000 to 1000)"),
  s('pid', 'PID namespace to use'),
  i('pids-limit', 'Tune container pids limit (set -1 for unlimited)'),
  s('platform', 'Set platform if server is multi-platform capable'),
  b('privileged', 'Give extended privileges to this container'),
  l('publish', "Publish a container's port(s) to the host", 'p'),
  b('publish-all', 'Publish all exposed ports to random ports', 'P'),
  s('pull', 'Pull image before running ("always", "missing", "never") (default "missing")'),
  b('quiet', 'Suppress the pull output', 'q'),
  b('read-only', "Mount the container's root filesystem as read only"),
  s('restart', 'Restart policy to apply when a container exits (default "no")'),
  b('rm', 'Automatically remove the container and its associated anonymous volumes when it exits'),
  s('runtime', 'Runtime to use for this container'),
  l('security-opt', 'Security Options'),
  s('shm-size', 'Size of /dev/shm', undefined, 'bytes'),
  s('stop-signal', 'Signal to stop the container'),
  i('stop-timeout', 'Timeout (in seconds) to stop a container'),
  l('storage-opt', 'Storage driver options for the container'),
  l('sysctl', 'Sysctl options'),
  l('tmpfs', 'Mount a tmpfs directory'),
  b('tty', 'Allocate a pseudo-TTY', 't'),
  l('ulimit', 'Ulimit options'),
  s('user', 'Username or UID (format: <name|uid>[:<group|gid>])', 'u'),
  s('userns', 'User namespace to use'),
  s('uts', 'UTS namespace to use'),
  l('volume', 'Bind mount a volume', 'v'),
  s('volume-driver', 'Optional volume driver for the container'),
  l('volumes-from', 'Mount volumes from the specified container(s)'),
  s('workdir', 'Working directory inside the container', 'w'),
];

export const RUN_ONLY_FLAGS: FlagSpec[] = [
  b('detach', 'Run container in background and print container ID', 'd'),
  s('detach-keys', 'Override the key sequence for detaching a container'),
  { long: 'sig-proxy', kind: 'bool', help: 'Proxy received signals to the process (default true)' },
];

export interface CreatePlan {
  image: string;
  name?: string;
  platform?: string;
  pull: 'missing' | 'always' | 'never';
  quiet: boolean;
  cidfile?: string;
  body: CreateContainerRequest;
}

export interface CreateContext {
  command: string;
  env: Record<string, string | undefined>;
  cwd: string;
  readFile: (file: string) => string;
}

function parseKeyValueLines(text: string, file: string, env: CreateContext['env'], command: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (/\s/.test(key)) throw new UsageError(command, `variable '${key}' contains whitespaces (in ${file})`);
    if (eq >= 0) out.push(line);
    else if (env[key] !== undefined) out.push(`${key}=${env[key]}`);
  }
  return out;
}

function keyValueMap(items: string[], what: string, command: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const it of items) {
    const eq = it.indexOf('=');
    if (eq === 0) throw new UsageError(command, `invalid argument "${it}" for "--${what}" flag: invalid key`);
    if (eq < 0) out[it] = '';
    else out[it.slice(0, eq)] = it.slice(eq + 1);
  }
  return out;
}

function bytesFlag(f: Flags, name: string, shown: string, command: string): number | undefined {
  const v = f.str(name);
  if (v === undefined) return undefined;
  if (v === '-1' && name === 'memory-swap') return -1;
  const n = parseRamSize(v);
  if (n === undefined) throw new UsageError(command, `invalid argument "${v}" for "${shown}" flag: invalid size: '${v}'`);
  return n;
}

function durationFlag(f: Flags, name: string, command: string): number | undefined {
  const v = f.str(name);
  if (v === undefined) return undefined;
  const ns = parseGoDuration(v);
  if (ns === undefined) throw new UsageError(command, `invalid argument "${v}" for "--${name}" flag: time: invalid duration "${v}"`);
  if (ns < 0) throw new UsageError(command, `--${name} cannot be negative`);
  return ns;
}

export function parseRestartPolicy(v: string, command: string): RestartPolicy {
  const [name, count, extra] = v.split(':');
  if (extra !== undefined) throw new UsageError(command, `invalid restart policy format: ${v}`);
  switch (name) {
    case '':
    case 'no':
    case 'always':
    case 'unless-stopped':
      if (count !== undefined) throw new UsageError(command, `invalid restart policy format: maximum retry count can only be used with 'on-failure'`);
      return { Name: name === '' ? 'no' : name, MaximumRetryCount: 0 };
    case 'on-failure': {
      if (count !== undefined && !/^\d+$/.test(count)) throw new UsageError(command, `invalid restart policy format: maximum retry count must be an integer`);
      return { Name: 'on-failure', MaximumRetryCount: count === undefined ? 0 : Number(count) };
    }
    default:
      throw new UsageError(command, `invalid restart policy: ${v} (use no, always, unless-stopped or on-failure[:max-retries])`);
  }
}

export function parseUlimit(v: string, command: string): Ulimit {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(v);
  if (!m) throw new UsageError(command, `invalid argument "${v}" for "--ulimit" flag: expected <type>=<soft limit>[:<hard limit>]`);
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  if (soft > hard && hard !== -1) throw new UsageError(command, `invalid argument "${v}" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { Name: m[1], Soft: soft, Hard: hard };
}

export function parseDevice(v: string, command: string): DeviceMapping {
  const parts = v.split(':');
  const validPerms = (p: string): boolean => p !== '' && /^[rwm]+$/.test(p) && new Set(p).size === p.length;
  let src = parts[0];
  let dst = '';
  let perms = 'rwm';
  if (parts.length === 3) {
    [src, dst, perms] = parts;
    if (!validPerms(perms)) throw new UsageError(command, `invalid device mode: ${perms}`);
  } else if (parts.length === 2) {
    if (validPerms(parts[1])) perms = parts[1];
    else dst = parts[1];
  } else if (parts.length !== 1) throw new UsageError(command, `invalid device specification: ${v}`);
  if (!src.startsWith('/')) throw new UsageError(command, `invalid device specification: ${v}: the host path must be absolute`);
  return { PathOnHost: src, PathInContainer: dst || src, CgroupPermissions: perms };
}

function normalizeCap(c: string): string {
  const u = c.trim().toUpperCase();
  return u === 'ALL' || u.startsWith('CAP_') ? u : `CAP_${u}`;
}

/** `-v` as docker splits it: SRC:DST[:MODE] is a bind or named volume, DST alone an anonymous volume. */
export function parseVolumeFlag(v: string, cwd: string, command: string): { bind?: string; anonymous?: string } {
  const parts = v.split(':');
  if (parts.length === 1) {
    if (!v.startsWith('/')) throw new UsageError(command, `invalid volume specification: '${v}': invalid mount config for type "volume": invalid mount path: '${v}' mount path must be absolute`);
    return { anonymous: v };
  }
  if (parts.length > 3 || parts.some((p) => p === '')) throw new UsageError(command, `invalid volume specification: '${v}'`);
  let [src, dst] = parts;
  if (parts.length === 2 && src.startsWith('/') && !dst.startsWith('/')) {
    // "/data:ro": an anonymous volume with a mode
    return { anonymous: src };
  }
  if (!dst.startsWith('/')) throw new UsageError(command, `invalid volume specification: '${v}': invalid mount config for type "bind": invalid mount path: '${dst}' mount path must be absolute`);
  if (src.startsWith('.')) src = path.resolve(cwd, src);
  else if (!src.startsWith('/') && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(src))
    throw new UsageError(command, `invalid volume specification: '${v}': "${src}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
  return { bind: [src, dst, ...parts.slice(2)].join(':') };
}

function parseBoolValue(v: string | undefined, key: string, command: string): boolean {
  if (v === undefined || ['true', '1'].includes(v.toLowerCase())) return true;
  if (['false', '0'].includes(v.toLowerCase())) return false;
  throw new UsageError(command, `invalid argument for --mount: invalid value for ${key}: ${v}`);
}

/** `--mount type=bind,source=/a,target=/b,readonly` (CSV, as docker reads it). */
export function parseMountFlag(v: string, cwd: string, command: string): MountSpec {
  const m: MountSpec = { Type: 'volume', Target: '' };
  const fail = (msg: string): never => {
    throw new UsageError(command, `invalid argument "${v}" for "--mount" flag: ${msg}`);
  };
  for (const field of v.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const val = eq < 0 ? undefined : field.slice(eq + 1);
    const need = (): string => (val === undefined ? fail(`invalid field '${field}' must be a key=value pair`) : val);
    switch (key) {
      case 'type': {
        const t = need();
        if (!['bind', 'volume', 'tmpfs', 'npipe', 'cluster', 'image'].includes(t)) fail(`invalid mount type: ${t}`);
        m.Type = t as MountSpec['Type'];
        break;
      }
      case 'source':
      case 'src':
        m.Source = need();
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.Target = need();
        break;
      case 'readonly':
      case 'ro':
        m.ReadOnly = parseBoolValue(val, key, command);
        break;
      case 'consistency':
        m.Consistency = need();
        break;
      case 'bind-propagation':
        m.BindOptions = { ...m.BindOptions, Propagation: need() };
        break;
      case 'bind-nonrecursive':
        m.BindOptions = { ...m.BindOptions, NonRecursive: parseBoolValue(val, key, command) };
        break;
      case 'bind-create-mountpoint':
        m.BindOptions = { ...m.BindOptions, CreateMountpoint: parseBoolValue(val, key, command) };
        break;
      case 'volume-nocopy':
        m.VolumeOptions = { ...m.VolumeOptions, NoCopy: parseBoolValue(val, key, command) };
        break;
      case 'volume-label': {
        const [k, ...rest] = need().split('=');
        m.VolumeOptions = { ...m.VolumeOptions, Labels: { ...m.VolumeOptions?.Labels, [k]: rest.join('=') } };
        break;
      }
      case 'volume-driver':
        m.VolumeOptions = { ...m.VolumeOptions, DriverConfig: { ...m.VolumeOptions?.DriverConfig, Name: need() } };
        break;
      case 'volume-opt': {
        const [k, ...rest] = need().split('=');
        const dc = m.VolumeOptions?.DriverConfig;
        m.VolumeOptions = { ...m.VolumeOptions, DriverConfig: { ...dc, Options: { ...dc?.Options, [k]: rest.join('=') } } };
        break;
      }
      case 'tmpfs-size': {
        const n = parseRamSize(need());
        if (n === undefined) fail(`invalid value for ${key}: ${val}`);
        m.TmpfsOptions = { ...m.TmpfsOptions, SizeBytes: n };
        break;
      }
      case 'tmpfs-mode': {
        const t = need();
        if (!/^[0-7]+$/.test(t)) fail(`invalid value for ${key}: ${t}`);
        m.TmpfsOptions = { ...m.TmpfsOptions, Mode: parseInt(t, 8) };
        break;
      }
      default:
        fail(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!m.Target) fail('target is required');
  if (m.Type === 'bind' && m.Source?.startsWith('.')) m.Source = path.resolve(cwd, m.Source);
  if (m.Type === 'bind' && !m.Source) fail('source is required when specifying bind mount');
  return m;
}

/** `-p [ip:][hostPort:]containerPort[/proto]`, ranges allowed, as docker's nat.ParsePortSpec. */
export function parsePublish(v: string, command: string): { ports: string[]; bindings: Record<string, PortBinding[]> } {
  let proto = 'tcp';
  let spec = v;
  const slash = v.lastIndexOf('/');
  if (slash >= 0) {
    proto = v.slice(slash + 1).toLowerCase();
    spec = v.slice(0, slash);
  }
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new UsageError(command, `invalid proto: ${proto}`);
  let ip = '';
  let hostPart = '';
  let containerPart: string;
  const bracket = /^\[([^\]]+)\]:(.*)$/.exec(spec);
  const rest = bracket ? bracket[2] : spec;
  if (bracket) ip = bracket[1];
  const parts = rest.split(':');
  if (bracket) {
    if (parts.length !== 2) throw new UsageError(command, `invalid publish spec: ${v}`);
    [hostPart, containerPart] = parts;
  } else if (parts.length === 1) containerPart = parts[0];
  else if (parts.length === 2) [hostPart, containerPart] = parts;
  else if (parts.length === 3) [ip, hostPart, containerPart] = parts;
  else throw new UsageError(command, `invalid publish spec: ${v}`);
  const range = (r: string, what: string): [number, number] => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(r);
    if (!m) throw new UsageError(command, `invalid ${what} port: ${r}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 0 || hi > 65535 || hi < lo) throw new UsageError(command, `invalid ${what} port range: ${r}`);
    return [lo, hi];
  };
  const [clo, chi] = range(containerPart, 'container');
  const host = hostPart === '' ? undefined : range(hostPart, 'host');
  const n = chi - clo + 1;
  if (host && host[1] - host[0] + 1 !== n && host[0] !== host[1]) throw new UsageError(command, `invalid ranges specified for container and host ports: ${containerPart} and ${hostPart}`);
  const ports: string[] = [];
  const bindings: Record<string, PortBinding[]> = {};
  for (let k = 0; k < n; k++) {
    const key = `${clo + k}/${proto}`;
    ports.push(key);
    let hp = '';
    if (host) hp = host[0] === host[1] ? String(host[0]) : String(host[0] + k);
    (bindings[key] ??= []).push({ HostIp: ip, HostPort: hp });
  }
  return { ports, bindings };
}

function parseSecurityOpt(opt: string, ctx: CreateContext): string {
  const sep = opt.includes('=') ? '=' : opt.includes(':') ? ':' : '';
  if (!sep) {
    if (opt === 'no-new-privileges') return opt;
    throw new UsageError(ctx.command, `invalid --security-opt: ${JSON.stringify(opt)}`);
  }
  const at = opt.indexOf(sep);
  const key = opt.slice(0, at);
  const value = opt.slice(at + 1);
  if (key === 'seccomp' && value !== 'unconfined' && value !== 'builtin') {
    let text: string;
    try {
      text = ctx.readFile(value);
    } catch (err) {
      throw new UsageError(ctx.command, `opening seccomp profile (${value}) failed: ${(err as Error).message}`);
    }
    try {
      return `seccomp=${JSON.stringify(JSON.parse(text))}`;
    } catch (err) {
      throw new UsageError(ctx.command, `compacting json for seccomp profile (${value}) failed: ${(err as Error).message}`);
    }
  }
  return `${key}=${value}`;
}

/** The whole translation: flags and positional arguments (IMAGE [COMMAND] [ARG...]) → the create request. */
export function buildCreatePlan(f: Flags, args: string[], ctx: CreateContext): CreatePlan {
  const cmd = ctx.command;
  const [image, ...command] = args;
  const config: CreateContainerRequest = { Image: image };
  const host: HostConfig = {};

  const detach = f.bool('detach');
  const attach = f.list('attach').map((a) => a.toLowerCase());
  for (const a of attach) if (!['stdin', 'stdout', 'stderr'].includes(a)) throw new UsageError(cmd, `invalid argument "${a}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`);
  if (detach && attach.length) throw new UsageError(cmd, 'Conflicting options: -a and -d');
  const interactive = f.bool('interactive');
  if (detach) {
    config.AttachStdin = false;
    config.AttachStdout = false;
    config.AttachStderr = false;
  } else {
    config.AttachStdin = attach.includes('stdin') || interactive;
    config.AttachStdout = attach.length ? attach.includes('stdout') : true;
    config.AttachStderr = attach.length ? attach.includes('stderr') : true;
  }
  config.Tty = f.bool('tty');
  config.OpenStdin = interactive;
  config.StdinOnce = interactive && config.AttachStdin === true;

  const env: string[] = [];
  for (const file of f.list('env-file')) {
    let text: string;
    try {
      text = ctx.readFile(file);
    } catch (err) {
      throw new UsageError(cmd, `open ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
    }
    env.push(...parseKeyValueLines(text, file, ctx.env, cmd));
  }
  for (const e of f.list('env')) {
    if (e.startsWith('=')) throw new UsageError(cmd, `invalid argument "${e}" for "-e, --env" flag: invalid environment variable: ${e}`);
    if (e.includes('=')) env.push(e);
    else env.push(ctx.env[e] !== undefined ? `${e}=${ctx.env[e]}` : e);
  }
  if (env.length) config.Env = env;
  config.Cmd = command.length ? command : null;
  if (f.has('entrypoint')) config.Entrypoint = [f.str('entrypoint') ?? ''];
  if (f.has('workdir')) {
    const w = f.str('workdir') as string;
    if (!w.startsWith('/')) throw new UsageError(cmd, `the working directory '${w}' is invalid, it needs to be an absolute path`);
    config.WorkingDir = w;
  }
  if (f.has('user')) config.User = f.str('user');
  if (f.has('hostname')) config.Hostname = f.str('hostname');
  if (f.has('domainname')) config.Domainname = f.str('domainname');
  if (f.has('stop-signal')) config.StopSignal = f.str('stop-signal');
  if (f.has('stop-timeout')) config.StopTimeout = f.int('stop-timeout');

  const labels: Record<string, string> = {};
  for (const file of f.list('label-file')) {
    let text: string;
    try {
      text = ctx.readFile(file);
    } catch (err) {
      throw new UsageError(cmd, `open ${file}: ${(err as Error).message}`);
    }
    Object.assign(labels, keyValueMap(parseKeyValueLines(text, file, {}, cmd), 'label-file', cmd));
  }
  Object.assign(labels, keyValueMap(f.list('label'), 'label', cmd));
  if (Object.keys(labels).length) config.Labels = labels;

  const health = buildHealthcheck(f, cmd);
  if (health) config.Healthcheck = health;

  // Volumes and mounts
  const binds: string[] = [];
  const volumes: Record<string, object> = {};
  for (const v of f.list('volume')) {
    const r = parseVolumeFlag(v, ctx.cwd, cmd);
    if (r.bind) binds.push(r.bind);
    else if (r.anonymous) volumes[r.anonymous] = {};
  }
  if (binds.length) host.Binds = binds;
  if (Object.keys(volumes).length) config.Volumes = volumes;
  const mounts = f.list('mount').map((m) => parseMountFlag(m, ctx.cwd, cmd));
  if (mounts.length) host.Mounts = mounts;
  const tmpfs: Record<string, string> = {};
  for (const t of f.list('tmpfs')) {
    const colon = t.indexOf(':');
    tmpfs[colon < 0 ? t : t.slice(0, colon)] = colon < 0 ? '' : t.slice(colon + 1);
  }
  if (Object.keys(tmpfs).length) host.Tmpfs = tmpfs;
  if (f.has('volumes-from')) host.VolumesFrom = f.list('volumes-from');
  if (f.has('volume-driver')) host.VolumeDriver = f.str('volume-driver');

  // Ports
  const exposed: Record<string, object> = {};
  const bindings: Record<string, PortBinding[]> = {};
  for (const p of f.list('publish')) {
    const r = parsePublish(p, cmd);
    for (const k of r.ports) exposed[k] = {};
    for (const [k, list] of Object.entries(r.bindings)) (bindings[k] ??= []).push(...list);
  }
  for (const e of f.list('expose')) {
    const proto = e.includes('/') ? e.slice(e.indexOf('/') + 1) : 'tcp';
    const range = e.split('/')[0];
    const m = /^(\d+)(?:-(\d+))?$/.exec(range);
    if (!m) throw new UsageError(cmd, `invalid range format for --expose: ${e}`);
    for (let port = Number(m[1]); port <= Number(m[2] ?? m[1]); port++) exposed[`${port}/${proto}`] = {};
  }
  if (Object.keys(exposed).length) config.ExposedPorts = exposed;
  if (Object.keys(bindings).length) host.PortBindings = bindings;
  if (f.bool('publish-all')) host.PublishAllPorts = true;

  // Resources
  const mem = bytesFlag(f, 'memory', '-m, --memory', cmd);
  if (mem !== undefined) host.Memory = mem;
  const memRes = bytesFlag(f, 'memory-reservation', '--memory-reservation', cmd);
  if (memRes !== undefined) host.MemoryReservation = memRes;
  const swap = bytesFlag(f, 'memory-swap', '--memory-swap', cmd);
  if (swap !== undefined) host.MemorySwap = swap;
  const kmem = bytesFlag(f, 'kernel-memory', '--kernel-memory', cmd);
  if (kmem !== undefined) host.KernelMemory = kmem;
  if (f.has('memory-swappiness')) host.MemorySwappiness = f.int('memory-swappiness');
  if (f.has('oom-kill-disable')) host.OomKillDisable = f.bool('oom-kill-disable');
  if (f.has('oom-score-adj')) host.OomScoreAdj = f.int('oom-score-adj');
  if (f.has('cpus')) host.NanoCpus = parseCpus(f.str('cpus') as string, cmd);
  if (f.has('cpu-shares')) host.CpuShares = f.int('cpu-shares');
  if (f.has('cpu-period')) host.CpuPeriod = f.int('cpu-period');
  if (f.has('cpu-quota')) host.CpuQuota = f.int('cpu-quota');
  if (f.has('cpu-rt-period')) host.CpuRealtimePeriod = f.int('cpu-rt-period');
  if (f.has('cpu-rt-runtime')) host.CpuRealtimeRuntime = f.int('cpu-rt-runtime');
  if (f.has('cpuset-cpus')) host.CpusetCpus = f.str('cpuset-cpus');
  if (f.has('cpuset-mems')) host.CpusetMems = f.str('cpuset-mems');
  if (f.has('blkio-weight')) host.BlkioWeight = f.int('blkio-weight');
  if (f.has('pids-limit')) host.PidsLimit = f.int('pids-limit');
  if (f.has('cgroup-parent')) host.CgroupParent = f.str('cgroup-parent');
  const devices = f.list('device').map((d) => parseDevice(d, cmd));
  if (devices.length) host.Devices = devices;
  if (f.has('device-cgroup-rule')) host.DeviceCgroupRules = f.list('device-cgroup-rule');
  const ulimits = f.list('ulimit').map((u) => parseUlimit(u, cmd));
  if (ulimits.length) host.Ulimits = ulimits;

  // Security
  if (f.has('cap-add')) host.CapAdd = f.list('cap-add').map(normalizeCap);
  if (f.has('cap-drop')) host.CapDrop = f.list('cap-drop').map(normalizeCap);
  if (f.bool('privileged')) host.Privileged = true;
  if (f.bool('read-only')) host.ReadonlyRootfs = true;
  const secopts = f.list('security-opt').map((o) => parseSecurityOpt(o, ctx));
  if (secopts.length) host.SecurityOpt = secopts;
  if (f.has('sysctl')) host.Sysctls = keyValueMap(f.list('sysctl'), 'sysctl', cmd);
  if (f.has('group-add')) host.GroupAdd = f.list('group-add');
  if (f.has('init')) host.Init = f.bool('init');

  // Namespaces, network, names
  const net = f.str('network') ?? f.str('net');
  host.NetworkMode = net ?? 'default';
  for (const [flag, field] of [
    ['ipc', 'IpcMode'],
    ['pid', 'PidMode'],
    ['uts', 'UTSMode'],
    ['userns', 'UsernsMode'],
    ['cgroupns', 'CgroupnsMode'],
    ['runtime', 'Runtime'],
    ['isolation', 'Isolation'],
  ] as const)
    if (f.has(flag)) host[field] = f.str(flag);
  if (f.has('dns')) host.Dns = f.list('dns');
  if (f.has('dns-option')) host.DnsOptions = f.list('dns-option');
  if (f.has('dns-search')) host.DnsSearch = f.list('dns-search');
  if (f.has('add-host')) host.ExtraHosts = f.list('add-host');
  if (f.has('link')) throw new UsageError(cmd, '--link: legacy links are not supported by berth; put the containers on one user-defined network (network create, --network) and they find each other by name');
  if (f.has('storage-opt')) host.StorageOpt = keyValueMap(f.list('storage-opt'), 'storage-opt', cmd);
  if (f.has('shm-size')) host.ShmSize = bytesFlag(f, 'shm-size', '--shm-size', cmd);

  // Lifecycle
  const autoRemove = f.bool('rm');
  if (autoRemove) host.AutoRemove = true;
  if (f.has('restart')) {
    host.RestartPolicy = parseRestartPolicy(f.str('restart') as string, cmd);
    if (autoRemove && host.RestartPolicy.Name !== 'no') throw new UsageError(cmd, 'Conflicting options: --restart and --rm');
  }
  if (f.has('log-driver') || f.has('log-opt')) {
    host.LogConfig = { Type: f.str('log-driver') ?? '', Config: keyValueMap(f.list('log-opt'), 'log-opt', cmd) };
  }

  config.HostConfig = host;
  const endpoint = endpointFlags(f, cmd);
  if (endpoint) {
    const builtin = net === undefined || net === 'default' || net === 'bridge';
    if (net === 'host' || net === 'none' || net?.startsWith('container:')) throw new UsageError(cmd, `--ip, --ip6, --network-alias and --mac-address do not apply to --network ${net}`);
    if (builtin && (endpoint.Aliases || endpoint.IPAMConfig)) throw new UsageError(cmd, '--ip, --ip6 and --network-alias need a user-defined network (--network NAME)');
    config.NetworkingConfig = { EndpointsConfig: { [net ?? 'default']: endpoint } };
  } else if (net && net !== 'default') config.NetworkingConfig = { EndpointsConfig: {} };

  const pull = f.str('pull') ?? 'missing';
  if (pull !== 'missing' && pull !== 'always' && pull !== 'never') throw new UsageError(cmd, `invalid pull option: '${pull}': must be one of "always", "missing" or "never"`);
  const name = f.str('name');
  return { image, name, platform: f.str('platform'), pull, quiet: f.bool('quiet'), cidfile: f.str('cidfile'), body: config };
}

/** --ip, --ip6, --network-alias, --mac-address: the EndpointsConfig entry of --network's network (as the docker CLI sends them). */
function endpointFlags(f: Flags, cmd: string): EndpointSettings | undefined {
  const aliases = [...f.list('network-alias'), ...f.list('net-alias')];
  const ip = f.str('ip');
  const ip6 = f.str('ip6');
  const mac = f.str('mac-address');
  if (ip !== undefined && isIP(ip) !== 4) throw new UsageError(cmd, `invalid IPv4 address: ${ip}`);
  if (ip6 !== undefined && isIP(ip6) !== 6) throw new UsageError(cmd, `invalid IPv6 address: ${ip6}`);
  if (mac !== undefined && !/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(mac)) throw new UsageError(cmd, `invalid MAC address: ${mac}`);
  if (!aliases.length && ip === undefined && ip6 === undefined && mac === undefined) return undefined;
  return {
    ...(aliases.length ? { Aliases: aliases } : {}),
    ...(ip !== undefined || ip6 !== undefined ? { IPAMConfig: { ...(ip !== undefined ? { IPv4Address: ip } : {}), ...(ip6 !== undefined ? { IPv6Address: ip6 } : {}) } } : {}),
    ...(mac !== undefined ? { MacAddress: mac } : {}),
  };
}

/** `--cpus 1.5` → NanoCpus, refusing more precision than a nanosecond of CPU. */
export function parseCpus(v: string, command: string): number {
  if (!/^\d*(\.\d+)?$/.test(v) || v === '' || v === '.') throw new UsageError(command, `invalid argument "${v}" for "--cpus" flag: failed to parse ${v} as a rational number`);
  const [whole, frac = ''] = v.split('.');
  if (frac.replace(/0+$/, '').length > 9) throw new UsageError(command, `invalid argument "${v}" for "--cpus" flag: value is too precise`);
  return Number(whole || '0') * 1e9 + Number(frac.padEnd(9, '0').slice(0, 9));
}

function buildHealthcheck(f: Flags, cmd: string): HealthConfig | undefined {
  const any = ['health-cmd', 'health-interval', 'health-timeout', 'health-start-period', 'health-start-interval', 'health-retries'].some((n) => f.has(n));
  if (f.bool('no-healthcheck')) {
    if (any) throw new UsageError(cmd, '--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!any) return undefined;
  const h: HealthConfig = {};
  const c = f.str('health-cmd');
  h.Test = c ? ['CMD-SHELL', c] : [];
  const interval = durationFlag(f, 'health-interval', cmd);
  const timeout = durationFlag(f, 'health-timeout', cmd);
  const startPeriod = durationFlag(f, 'health-start-period', cmd);
  const startInterval = durationFlag(f, 'health-start-interval', cmd);
  h.Interval = interval ?? 0;
  h.Timeout = timeout ?? 0;
  h.StartPeriod = startPeriod ?? 0;
  h.StartInterval = startInterval ?? 0;
  const retries = f.int('health-retries');
  if (retries !== undefined && retries < 0) throw new UsageError(cmd, '--health-retries cannot be negative');
  h.Retries = retries ?? 0;
  return h;
}
