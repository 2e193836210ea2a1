// Checks of the create request that do not produce spec fields: options berth refuses
// by name, the log driver, the restart policy, health check, stop signal and ports.
import { constants as osConstants } from 'node:os';
import type { ContainerConfig, HostConfig } from '../types.js';
import { invalid, unsupported } from './invalid.js';

export interface LogSettings {
  driver: 'json-file' | 'none';
  /** Bytes; -1 unbounded. */
  maxSize: number;
  /** Files including the current one. */
  maxFile: number;
}

export const DEFAULT_LOG_MAX_SIZE = 10 * 1024 * 1024;
export const DEFAULT_LOG_MAX_FILE = 3;

/** "10m", "1g", "512k", "1024" → bytes (Docker's units are powers of 1024). */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return undefined;
  const exp = ' kmgtp'.indexOf(m[2].toLowerCase() || ' ');
  return Math.floor(Number(m[1]) * 1024 ** exp);
}

/** HostConfig.LogConfig: json-file (max-size, max-file, compress=false; labels/env/tag ignored with a warning) or none. */
export function parseLogConfig(lc: HostConfig['LogConfig']): { log: LogSettings; warnings: string[] } {
  const warnings: string[] = [];
  const type = lc?.Type ?? '';
  if (type !== '' && type !== 'json-file' && type !== 'none') {
    throw unsupported('HostConfig.LogConfig.Type', `the "${type}" logging driver`, 'use json-file (the default) or none');
  }
  const driver = type === 'none' ? 'none' : 'json-file';
  const log: LogSettings = { driver, maxSize: DEFAULT_LOG_MAX_SIZE, maxFile: DEFAULT_LOG_MAX_FILE };
  let sizeGiven = false;
  for (const [key, value] of Object.entries(lc?.Config ?? {})) {
    const field = `HostConfig.LogConfig.Config["${key}"]`;
    if (driver === 'none') throw invalid(field, `unknown log opt '${key}' for none log driver`);
    switch (key) {
      case 'max-size': {
        if (value === '-1' || value === '0') {
          log.maxSize = -1;
          break;
        }
        const n = parseByteSize(value);
        if (n === undefined || n <= 0) throw invalid(field, `invalid size "${value}"`, 'e.g. 10m, 1g, -1 for unbounded');
        log.maxSize = n;
        sizeGiven = true;
        break;
      }
      case 'max-file': {
        if (!/^\d+$/.test(value) || Number(value) < 1) throw invalid(field, `max-file must be a positive integer, got "${value}"`);
        log.maxFile = Number(value);
        break;
      }
      case 'compress':
        if (value === 'false') break;
        throw unsupported(field, 'compressing rotated log files', 'use compress=false or leave it out');
      case 'labels':
      case 'labels-regex':
      case 'env':
      case 'env-regex':
      case 'tag':
        warnings.push(`${field}: the json-file option "${key}" is accepted but has no effect in berth`);
        break;
      default:
        throw invalid(field, `unknown log opt '${key}' for json-file log driver`, 'known: max-size, max-file, compress, labels, env, tag');
    }
  }
  if (log.maxSize === -1 && (lc?.Config ?? {})['max-file'] !== undefined && log.maxFile > 1 && !sizeGiven) {
    throw invalid('HostConfig.LogConfig.Config["max-file"]', 'max-file cannot be set when max-size is not set');
  }
  return { log, warnings };
}

/** Refuses HostConfig/Config fields that carry a value berth does not implement. */
export function refuseUnsupported(config: ContainerConfig, hc: HostConfig): void {
  if (hc.VolumeDriver && hc.VolumeDriver !== 'local') throw unsupported('HostConfig.VolumeDriver', `volume driver "${hc.VolumeDriver}"`, 'only the local driver exists');
  if (hc.VolumesFrom && hc.VolumesFrom.length > 0) throw unsupported('HostConfig.VolumesFrom', 'mounting the volumes of another container', 'name the volumes with Binds or Mounts');
  if (hc.Links && hc.Links.length > 0) throw unsupported('HostConfig.Links', 'legacy container links', 'put the containers on a user-defined network: they find each other by name there');
  if (hc.Runtime && !['berth', 'runc'].includes(hc.Runtime)) throw unsupported('HostConfig.Runtime', `runtime "${hc.Runtime}"`, 'berth runs containers with its own runtime');
  if (hc.Isolation && hc.Isolation !== 'default') throw unsupported('HostConfig.Isolation', `isolation "${hc.Isolation}"`);
  if (hc.StorageOpt && Object.keys(hc.StorageOpt).length > 0) throw unsupported('HostConfig.StorageOpt', 'storage driver options');
  if (hc.Cgroup) throw unsupported('HostConfig.Cgroup', `joining the cgroup of "${hc.Cgroup}"`);
  if (hc.UsernsMode && hc.UsernsMode !== 'host') throw unsupported('HostConfig.UsernsMode', `user namespace mode "${hc.UsernsMode}"`);
  const policy = hc.RestartPolicy;
  if (policy) {
    const name = policy.Name ?? '';
    if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(name)) throw invalid('HostConfig.RestartPolicy.Name', `invalid restart policy "${name}"`, 'one of no, always, unless-stopped, on-failure');
    const max = policy.MaximumRetryCount ?? 0;
    if (!Number.isInteger(max) || max < 0) throw invalid('HostConfig.RestartPolicy.MaximumRetryCount', 'maximum retry count cannot be negative');
    if (max > 0 && name !== 'on-failure') throw invalid('HostConfig.RestartPolicy.MaximumRetryCount', `maximum retry count cannot be used with restart policy '${name}'`);
    if (hc.AutoRemove && name !== '' && name !== 'no') throw invalid('HostConfig.AutoRemove', `can't create 'AutoRemove' container with restart policy '${name}'`, 'use one or the other');
  }
}

const SIGNALS = osConstants.signals as Record<string, number>;

/** A signal name ("SIGTERM", "TERM"), number ("15") or real-time one ("SIGRTMIN+3") → its number. */
export function parseSignal(text: string, field: string): number {
  const s = text.trim().toUpperCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = s.startsWith('SIG') ? s : `SIG${s}`;
    if (SIGNALS[name] !== undefined) return SIGNALS[name];
    const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(name) ?? /^SIGRTMAX(?:-(\d+))?$/.exec(name);
    if (rt) {
      const off = Number(rt[1] ?? 0);
      const n = name.startsWith('SIGRTMIN') ? 34 + off : 64 - off;
      if (n >= 34 && n <= 64) return n;
    }
  }
  throw invalid(field, `invalid signal: ${text}`, 'e.g. SIGTERM, TERM or 15');
}

/** Healthcheck, StopSignal, StopTimeout, ExposedPorts, Env and Hostname of the merged Config. */
export function validateConfig(c: ContainerConfig): void {
  const h = c.Healthcheck;
  if (h) {
    const t = h.Test ?? [];
    if (t.length > 0 && !['NONE', 'CMD', 'CMD-SHELL'].includes(t[0])) throw invalid('Config.Healthcheck.Test', `unknown test type "${t[0]}"`, 'NONE, CMD or CMD-SHELL');
    if (t[0] === 'CMD-SHELL' && t.length !== 2) throw invalid('Config.Healthcheck.Test', 'CMD-SHELL takes exactly one command string');
    if (t[0] === 'CMD' && t.length < 2) throw invalid('Config.Healthcheck.Test', 'CMD needs a program to run');
    for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval'] as const) {
      const v = h[k] ?? 0;
      if (!Number.isInteger(v) || (v !== 0 && v < 1e6)) throw invalid(`Config.Healthcheck.${k}`, `${k} in Healthcheck cannot be less than 1ms`);
    }
    if (!Number.isInteger(h.Retries ?? 0) || (h.Retries ?? 0) < 0) throw invalid('Config.Healthcheck.Retries', 'Retries in Healthcheck cannot be negative');
  }
  if (c.StopSignal) parseSignal(c.StopSignal, 'Config.StopSignal');
  if (c.StopTimeout !== undefined && c.StopTimeout !== null && (!Number.isInteger(c.StopTimeout) || c.StopTimeout < -1)) {
    throw invalid('Config.StopTimeout', 'must be an integer number of seconds (-1 waits forever)');
  }
  for (const key of Object.keys(c.ExposedPorts ?? {})) {
    if (!/^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/.test(key)) throw invalid(`Config.ExposedPorts["${key}"]`, `invalid port "${key}"`, 'e.g. "80/tcp", "53/udp"');
    for (const p of key.split('/')[0].split('-').map(Number)) if (p < 1 || p > 65535) throw invalid(`Config.ExposedPorts["${key}"]`, `port ${p} is out of range 1-65535`);
  }
  (c.Env ?? []).forEach((e, i) => {
    if (typeof e !== 'string' || e === '' || e.startsWith('=')) throw invalid(`Config.Env[${i}]`, `invalid environment variable: ${JSON.stringify(e)}`);
    if (e.includes('\0')) throw invalid(`Config.Env[${i}]`, 'contains a NUL byte');
  });
  if (c.Hostname !== undefined && c.Hostname !== '') checkHostname(c.Hostname, 'Config.Hostname');
  if (c.Domainname !== undefined && c.Domainname !== '') checkHostname(c.Domainname, 'Config.Domainname');
}

function checkHostname(name: string, field: string): void {
  if (name.length > 64) throw invalid(field, `"${name}" is longer than 64 characters`);
  if (!/^[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$/.test(name)) throw invalid(field, `invalid hostname format: ${name}`, 'letters, digits, "-", "_" and "."');
}
