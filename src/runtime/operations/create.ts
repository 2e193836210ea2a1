// create: load state → check (id free, config valid, rootfs present) → act (cgroup, plan,
// berth-exec, hooks) → save. Any failure removes everything it made.
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../host/fs-atomic.js';
import { BerthError, attachCleanupError } from '../../errors.js';
import { readProcStat } from '../../host/proc.js';
import type { CgroupManager } from '../cgroups/index.js';
import { compileCreate, effectiveDeviceRules, type CgroupMountSource } from '../compile.js';
import { launch, type Launched, type LaunchOptions } from '../exec-channel.js';
import { formatPlan, type Plan } from '../plan.js';
import { runHooks, runHooksWarnOnly } from '../hooks.js';
import type { Spec } from '../spec.js';
import type { ContainerRecord } from '../state.js';
import { parseSpec } from '../validate.js';
import { checkSecurityModules } from '../host-security.js';
import { ownerName, type RuntimeContext } from './context.js';

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  preserveFds?: number;
  /** run: berth-exec stays the parent and reports the exit status. */
  foreground?: boolean;
  /** run: no exec fifo; the process starts as soon as it is ready. */
  startNow?: boolean;
  stdio?: LaunchOptions['stdio'];
  /** Use this config instead of <bundle>/config.json (the library path). */
  spec?: Spec;
  /** See LaunchOptions.wrapper. */
  wrapper?: string[];
}

export interface Created {
  rec: ContainerRecord;
  launched: Launched;
  cg?: CgroupManager;
}

export function readBundleSpec(bundle: string): Spec {
  const file = join(bundle, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BerthError(code === 'ENOENT' ? 'NotFound' : 'InvalidArgument', `${file}: cannot read the bundle's config: ${code ?? err}`, {
      hint: 'pass the bundle directory with --bundle (it must hold config.json)',
    });
  }
  return parseSpec(text, file);
}

function cgroupMountSources(cg: CgroupManager | undefined): CgroupMountSource[] {
  if (!cg) return [];
  const json = cg.toJSON();
  const out: CgroupMountSource[] = json.v1.map((h) => ({
    name: h.controllers.map((c) => c.replace(/^name=/, '')).join(','),
    hostDir: h.dir,
    fstype: 'cgroup',
  }));
  if (json.v2) out.push({ name: json.mode === 'v2' ? '' : 'unified', hostDir: json.v2.dir, fstype: 'cgroup2' });
  return out;
}

export async function createContainer(ctx: RuntimeContext, o: CreateOptions): Promise<Created> {
  const bundle = resolve(o.bundle);
  const spec = o.spec ?? readBundleSpec(bundle);
  if (!spec.process) throw new BerthError('InvalidArgument', `${join(bundle, 'config.json')}: process: is required to create a container`);
  const rootfs = isAbsolute(spec.root?.path ?? '') ? spec.root!.path : resolve(bundle, spec.root?.path ?? 'rootfs');
  try {
    if (!statSync(rootfs).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new BerthError('NotFound', `root.path: rootfs ${rootfs} does not exist or is not a directory`, { hint: 'unpack an image into the bundle first' });
  }
  checkSecurityModules(spec);
  const host = ctx.hostFacts();

  const dir = ctx.store.reserve(o.id);
  let cg: CgroupManager | undefined;
  let pid = 0;
  const rec: ContainerRecord = {
    id: o.id,
    bundle,
    rootfs,
    pid: 0,
    created: new Date().toISOString(),
    owner: ownerName(),
    annotations: spec.annotations,
    config: spec,
  };
  try {
    const candidate = await ctx.newCgroupManager(o.id, spec.linux?.cgroupsPath);
    // A cgroup other processes live in belongs to someone else: never adopt it (a failed
    // create would kill them, a delete would take it away).
    if ((await candidate.pids()).length > 0)
      throw new BerthError('FailedPrecondition', `linux.cgroupsPath: cgroup ${candidate.joinDirs()[0]} already has processes`, {
        hint: 'give each container a cgroup of its own',
      });
    cg = candidate;
    // Saved before anything exists on the host, so `delete` can clean up after a crash (a
    // crash before this leaves only the reserved directory, which `delete --force` removes).
    rec.cgroup = cg.toJSON();
    ctx.store.save(rec);
  } catch (err) {
    ctx.store.remove(o.id);
    throw err;
  }
  // berth-exec starts while the cgroups are made (it waits for its plan before cloning).
  let planReady!: (plan: Plan) => void;
  let planFailed!: (err: unknown) => void;
  const planPromise = new Promise<Plan>((res, rej) => {
    planReady = res;
    planFailed = rej;
  });
  let launching: Promise<Launched> | undefined;
  try {
    launching = launch({
      plan: planPromise,
      stdio: o.stdio,
      preserveFds: o.preserveFds,
      foreground: o.foreground,
      wrapper: o.wrapper,
      timeoutMs: 60_000,
      onWarning: ctx.warn,
      onSync: async (_tag, childPid) => {
        pid = childPid;
        const state = { ...ctx.store.ociState({ ...rec, pid: childPid }, 'creating'), pid: childPid };
        await runHooks(spec.hooks, 'prestart', state);
        await runHooks(spec.hooks, 'createRuntime', state);
        return JSON.stringify({ ...state, status: 'created' });
      },
    });
    launching.catch(() => undefined);
    await cg.create();
    // Parents it had to make are recorded too (the default parent already is).
    const made = cg.toJSON();
    if (JSON.stringify(made) !== JSON.stringify(rec.cgroup)) {
      rec.cgroup = made;
      ctx.store.save(rec);
    }
    const devices = effectiveDeviceRules(spec);
    for (const w of await cg.apply({ ...spec.linux?.resources, devices }, 'linux.resources')) ctx.warn(w.message);
    const program = cg.deviceProgram(devices);
    const fifoPath = o.startNow ? undefined : ctx.store.fifoPath(o.id);
    const { plan, warnings } = compileCreate({
      id: o.id,
      spec,
      bundle,
      fifoPath,
      consoleSocket: o.consoleSocket ? resolve(o.consoleSocket) : undefined,
      noPivot: o.noPivot,
      noNewKeyring: o.noNewKeyring,
      foreground: o.foreground,
      preserveFds: o.preserveFds,
      cgroupDirs: cg.joinDirs(),
      deviceProgram: program ? { cgroupDir: cg.paths().unified, insns: program } : undefined,
      cgroupMounts: cgroupMountSources(cg),
      host,
    });
    warnings.forEach(ctx.warn);
    ctx.debug?.(`launch plan:\n${formatPlan(plan)}`);
    planReady(plan);
    const launched = await launching;
    pid = launched.pid;
    rec.pid = launched.pid;
    rec.pidStartTime = readProcStat(launched.pid)?.startTime;
    rec.started = o.startNow ? true : undefined;
    ctx.store.save(rec);
    if (o.pidFile) writePidFile(o.pidFile, launched.pid);
    return { rec, launched, cg };
  } catch (err) {
    planFailed(err);
    if (launching) await launching.catch(() => undefined);
    await cleanupFailedCreate(ctx, { id: o.id, spec, rec, pid, cg, dir }).catch((e) => attachCleanupError(err, e));
    throw err;
  }
}

async function cleanupFailedCreate(
  ctx: RuntimeContext,
  c: { id: string; spec: Spec; rec: ContainerRecord; pid: number; cg?: CgroupManager; dir: string },
): Promise<void> {
  if (c.pid > 0) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (c.cg) {
    await c.cg.kill('SIGKILL').catch(() => undefined);
    await c.cg.destroy();
  }
  if (c.pid > 0) await runHooksWarnOnly(c.spec.hooks, 'poststop', ctx.store.ociState({ ...c.rec, pid: c.pid }, 'stopped'), ctx.warn);
  ctx.store.remove(c.id);
}

/** --pid-file, atomically (shims read it right after create returns). */
export function writePidFile(file: string, pid: number): void {
  try {
    writeFileAtomic(resolve(file), String(pid), { durable: false });
  } catch (err) {
    throw new BerthError('InvalidArgument', `--pid-file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}
