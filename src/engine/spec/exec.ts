// The process of `docker exec`, derived from the container's spec the way Docker does it:
// the container's environment with the exec's Env over it, its user (or the exec's,
// resolved in the container's rootfs), its capabilities (all of them when Privileged).
import { posix } from 'node:path';
import { CAPABILITIES } from '../../runtime/capabilities.js';
import type { Process, Spec } from '../../runtime/spec.js';
import type { ContainerConfig, ExecCreateRequest, HostConfig } from '../types.js';
import { invalid } from './invalid.js';
import { processEnv } from './merge.js';
import { resolveUser } from './user.js';

export interface ExecProcessInput {
  request: ExecCreateRequest;
  /** The container's effective Config and HostConfig (as buildContainerSpec returned them). */
  config: ContainerConfig;
  hostConfig: HostConfig;
  /** The container's spec (capabilities, rlimits, no_new_privs, cwd). */
  spec: Spec;
  /** The container's rootfs as the host sees it, for User. */
  rootfs: string;
}

export function buildExecProcess(input: ExecProcessInput): Process {
  const req = input.request;
  if (!Array.isArray(req.Cmd) || req.Cmd.length === 0 || req.Cmd[0] === '') throw invalid('Cmd', 'no exec command specified');
  (req.Env ?? []).forEach((e, i) => {
    if (typeof e !== 'string' || e === '' || e.startsWith('=')) throw invalid(`Env[${i}]`, `invalid environment variable: ${JSON.stringify(e)}`);
  });
  const base = input.spec.process;
  if (!base) throw new Error('buildExecProcess: the container spec has no process');
  const user = resolveUser({ rootfs: input.rootfs, user: req.User || input.config.User || '', groupAdd: input.hostConfig.GroupAdd, field: 'User' });
  const tty = req.Tty === true;
  const env = processEnv({ Env: [...(input.config.Env ?? []), ...(req.Env ?? [])] }, { hostname: input.config.Hostname ?? '', tty, home: user.home });
  let cwd = base.cwd;
  if (req.WorkingDir) {
    if (!req.WorkingDir.startsWith('/')) throw invalid('WorkingDir', `the working directory '${req.WorkingDir}' is invalid, it needs to be an absolute path`);
    cwd = posix.normalize(req.WorkingDir);
  }
  const caps = req.Privileged ? [...CAPABILITIES] : base.capabilities?.bounding ?? [];
  const out: Process = {
    terminal: tty,
    user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}) },
    args: [...req.Cmd],
    env,
    cwd,
    capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
    noNewPrivileges: base.noNewPrivileges === true,
  };
  if (base.rlimits) out.rlimits = base.rlimits.map((r) => ({ ...r }));
  if (base.oomScoreAdj !== undefined) out.oomScoreAdj = base.oomScoreAdj;
  if (req.ConsoleSize && tty) out.consoleSize = { height: req.ConsoleSize[0], width: req.ConsoleSize[1] };
  return out;
}
