// `berth-oci exec`: the process to run, from --process or from flags over the container's
// own process settings (what runc does).
import { readFileSync } from 'node:fs';
import { BerthError } from '../errors.js';
import type { Process } from '../runtime/spec.js';
import { validateSpec } from '../runtime/validate.js';
import type { RuntimeContext } from '../runtime/operations/index.js';

export interface ExecFlags {
  processFile?: string;
  cwd?: string;
  env: string[];
  tty: boolean;
  user?: { uid: number; gid?: number };
  additionalGids: number[];
  caps: string[];
  noNewPrivs: boolean;
  apparmor?: string;
  processLabel?: string;
}

function readProcessFile(file: string): Process {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BerthError('NotFound', `--process ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BerthError('InvalidArgument', `--process ${file}: invalid JSON: ${(err as Error).message}`);
  }
  // Validate through the config validator so field errors name the path; the file holds only
  // a process, so the fields a config.json requires besides it are filled in.
  return checkedProcess(value, file);
}

/** Validates a process through the config validator, so errors name the field. */
function checkedProcess(value: unknown, where: string): Process {
  return validateSpec({ ociVersion: '1.0.0', root: { path: '/' }, process: value }, where).process!;
}

export function buildExecProcess(ctx: RuntimeContext, id: string, cmd: string[], f: ExecFlags): Process {
  if (f.processFile) return readProcessFile(f.processFile);
  if (cmd.length === 0) throw new BerthError('InvalidArgument', 'exec: missing the command to run', { hint: 'usage: berth-oci exec <container-id> <command> [args...]' });
  const base = ctx.store.load(id).config.process;
  const caps = base?.capabilities ?? {};
  const add = (set: string[] | undefined) => [...new Set([...(set ?? []), ...f.caps.map((c) => (c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`))])];
  return checkedProcess({
    terminal: f.tty,
    args: cmd,
    env: [...(base?.env ?? []), ...f.env],
    cwd: f.cwd ?? base?.cwd ?? '/',
    user: {
      uid: f.user?.uid ?? base?.user.uid ?? 0,
      gid: f.user?.gid ?? (f.user ? 0 : base?.user.gid ?? 0),
      additionalGids: f.additionalGids.length ? f.additionalGids : f.user ? undefined : base?.user.additionalGids,
      umask: base?.user.umask,
    },
    capabilities: f.caps.length
      ? { bounding: add(caps.bounding), effective: add(caps.effective), permitted: add(caps.permitted), inheritable: caps.inheritable, ambient: add(caps.ambient) }
      : caps,
    rlimits: base?.rlimits,
    noNewPrivileges: f.noNewPrivs || base?.noNewPrivileges,
    apparmorProfile: f.apparmor ?? base?.apparmorProfile,
    selinuxLabel: f.processLabel ?? base?.selinuxLabel,
    oomScoreAdj: undefined,
  }, 'exec');
}
