// The effective Config of a container: the request merged over the image's config the
// way Docker's daemon does it (inspect shows the result), and the process environment
// built from it.
import type { ContainerConfig, CreateContainerRequest, HealthConfig } from '../types.js';

export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function envKey(entry: string): string {
  const i = entry.indexOf('=');
  return i < 0 ? entry : entry.slice(0, i);
}

/**
 * `base` with each entry of `overrides` replacing the entry of the same key in place, or
 * appended. An override without "=" removes its key (Docker's rule for `-e NAME` when the
 * client could not resolve NAME).
 */
export function replaceOrAppendEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const out = [...base];
  for (const o of overrides) {
    const key = envKey(o);
    const i = out.findIndex((e) => envKey(e) === key);
    if (!o.includes('=')) {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = o;
    else out.push(o);
  }
  return out;
}

function mergeHealthcheck(user: HealthConfig | null | undefined, image: HealthConfig | null | undefined): HealthConfig | undefined {
  if (!user) return image ?? undefined;
  if (!image) return user;
  const out: HealthConfig = { ...user };
  if (!user.Test || user.Test.length === 0) out.Test = image.Test;
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
    if (!user[k] && image[k]) out[k] = image[k];
  }
  return out;
}

function mergeRecord<T>(user: Record<string, T> | null | undefined, image: Record<string, T> | null | undefined): Record<string, T> | undefined {
  if (!user && !image) return undefined;
  return { ...(image ?? {}), ...(user ?? {}) };
}

/**
 * The request's Config merged with the image's (Docker's `merge`): the request wins field
 * by field; Env keeps the request's entries and appends the image's other keys; Labels,
 * ExposedPorts and Volumes are unions; a request Entrypoint drops the image's Cmd (and
 * Entrypoint) unless the request also gives a Cmd; a Healthcheck inherits what it leaves zero.
 */
export function mergeConfig(request: CreateContainerRequest, image?: ContainerConfig | null): ContainerConfig {
  const { HostConfig: _h, NetworkingConfig: _n, ...user } = request;
  const out: ContainerConfig = { ...user };
  const img = image ?? {};
  if (!out.User) out.User = img.User ?? '';
  const userEnv = user.Env ?? [];
  if (userEnv.length === 0) out.Env = [...(img.Env ?? [])];
  else {
    const keys = new Set(userEnv.map(envKey));
    out.Env = [...userEnv, ...(img.Env ?? []).filter((e) => !keys.has(envKey(e)))];
  }
  // An empty Entrypoint ([] or [""], what `--entrypoint ""` sends) resets the image's.
  const entrypointGiven = user.Entrypoint !== undefined && user.Entrypoint !== null;
  const resetEntrypoint = entrypointGiven && (user.Entrypoint!.length === 0 || (user.Entrypoint!.length === 1 && user.Entrypoint![0] === ''));
  if (!entrypointGiven) {
    out.Entrypoint = img.Entrypoint ?? null;
    if (!user.Cmd || user.Cmd.length === 0) {
      out.Cmd = img.Cmd ?? null;
      if (img.ArgsEscaped !== undefined) out.ArgsEscaped = img.ArgsEscaped;
    }
  } else {
    out.Entrypoint = resetEntrypoint ? null : [...user.Entrypoint!];
    out.Cmd = user.Cmd && user.Cmd.length > 0 ? [...user.Cmd] : null;
  }
  out.Labels = mergeRecord(user.Labels, img.Labels) ?? {};
  const ports = mergeRecord(user.ExposedPorts, img.ExposedPorts);
  if (ports) out.ExposedPorts = ports;
  const volumes = mergeRecord(user.Volumes, img.Volumes);
  if (volumes) out.Volumes = volumes;
  if (!out.WorkingDir) out.WorkingDir = img.WorkingDir ?? '';
  if (!out.StopSignal && img.StopSignal) out.StopSignal = img.StopSignal;
  const health = mergeHealthcheck(user.Healthcheck, img.Healthcheck);
  if (health) out.Healthcheck = health;
  if ((!out.OnBuild || out.OnBuild.length === 0) && img.OnBuild) out.OnBuild = img.OnBuild;
  if ((!out.Shell || out.Shell.length === 0) && img.Shell) out.Shell = img.Shell;
  return out;
}

/** The command a merged Config runs: Entrypoint then Cmd. */
export function commandOf(config: ContainerConfig): string[] {
  return [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
}

export interface ProcessEnvOptions {
  hostname: string;
  tty: boolean;
  /** HOME when the Config's Env does not set it (the user's passwd home). */
  home: string;
}

/** Docker's process environment: PATH, HOSTNAME, TERM (tty) then the Config's Env over them; HOME last if unset. */
export function processEnv(config: ContainerConfig, opts: ProcessEnvOptions): string[] {
  const base = [DEFAULT_PATH_ENV, `HOSTNAME=${opts.hostname}`];
  if (opts.tty) base.push('TERM=xterm');
  const env = replaceOrAppendEnv(base, config.Env ?? []);
  if (!env.some((e) => envKey(e) === 'HOME')) env.push(`HOME=${opts.home}`);
  return env;
}
