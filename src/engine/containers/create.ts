// create: check (name free, image present, request valid) → act (rootfs snapshot mounted at
// <dir>/rootfs, generated /etc files, anonymous volumes, OCI config) → save. The OCI
// container itself is made at start, as Docker does. Any failure removes what it made.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, attachCleanupError } from '../../errors.js';
import { writeJsonAtomic } from '../../host/fs-atomic.js';
import { mountAll, unmountAll } from '../../image/snapshots/mount.js';
import { initBinaryPath } from '../monitor.js';
import { buildContainerSpec, renderContainerFiles, resolveInRoot } from '../spec/index.js';
import type { CreateContainerRequest } from '../types.js';
import type { EngineContext } from '../context.js';
import { ZERO_TIME, type ContainerRecord } from './record.js';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function checkName(ctx: EngineContext, name: string, self?: string): void {
  if (!NAME.test(name)) throw new BerthError('InvalidArgument', `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  const other = ctx.byName(name);
  if (other && other.id !== self)
    throw new BerthError('Conflict', `Conflict. The container name "/${name}" is already in use by container "${other.id}". You have to remove (or rename) that container to be able to reuse that name.`);
}

/** A name like Docker's: adjective_surname, unique among this engine's containers. */
function generateName(ctx: EngineContext): string {
  const left = ['admiring', 'bold', 'brave', 'clever', 'eager', 'focused', 'gallant', 'happy', 'jolly', 'keen', 'lucid', 'nifty', 'quirky', 'serene', 'tender', 'vibrant'];
  const right = ['babbage', 'curie', 'darwin', 'euler', 'fermat', 'gauss', 'hopper', 'kepler', 'lovelace', 'noether', 'pascal', 'ritchie', 'shannon', 'turing', 'wozniak', 'yalow'];
  for (let i = 0; ; i++) {
    const name = `${left[Math.floor(Math.random() * left.length)]}_${right[Math.floor(Math.random() * right.length)]}${i > 8 ? i : ''}`;
    if (!ctx.byName(name)) return name;
  }
}

export async function createContainer(ctx: EngineContext, req: CreateContainerRequest, opts: { name?: string }): Promise<{ Id: string; Warnings: string[] }> {
  if (typeof req !== 'object' || req === null) throw new BerthError('InvalidArgument', 'the request body must be a JSON object (the container config)');
  if (!req.Image) throw new BerthError('InvalidArgument', 'Config.Image: an image is required');
  const name = opts.name ? opts.name.replace(/^\//, '') : generateName(ctx);
  checkName(ctx, name);
  const image = await ctx.images.resolveForContainer(req.Image);
  const id = ctx.newId();
  const dir = ctx.store.dir(id);
  const rootfs = ctx.store.rootfs(id);
  const snapshotKey = `container-${id}`;
  let mounted = false;
  let prepared = false;
  const volumesMade: string[] = [];
  const namedMade: string[] = [];
  try {
    mkdirSync(rootfs, { recursive: true, mode: 0o700 });
    const { mounts } = await ctx.images.service.prepareRootfs(snapshotKey, image.ref);
    prepared = true;
    mountAll(mounts, rootfs);
    mounted = true;

    const files = { hosts: join(dir, 'hosts'), hostname: join(dir, 'hostname'), resolvConf: join(dir, 'resolv.conf') };
    const built = buildContainerSpec({
      id,
      name,
      request: req,
      image: { config: image.config, id: image.id, name: image.name },
      rootfs,
      files,
      volumes: (volumeName: string) => ctx.volumes.mountpoint(volumeName),
      initPath: initBinaryPath(),
      cgroupsPath: `/berth/${id}`,
      hostFacts: await ctx.specHostFacts(),
      resolveContainer: (ref, kind) => ctx.networks.joinTarget(ref, kind),
    });
    ctx.networks.checkContainer({ hostConfig: built.hostConfig, request: req, config: built.config });
    const texts = renderContainerFiles(built, { resolvConf: readHostResolvConf(ctx.opts.hostResolvConf ?? '/etc/resolv.conf'), hostGateway: ctx.networks.hostGateway() });
    writeFileSync(files.hosts, texts.hosts);
    writeFileSync(files.hostname, texts.hostname);
    writeFileSync(files.resolvConf, texts.resolvConf);
    for (const dirToMake of built.hostDirsToCreate) mkdirSync(dirToMake, { recursive: true, mode: 0o755 });
    for (const v of built.volumes) {
      const existed = await ctx.volumes.get(v.name).then(
        () => true,
        () => false,
      );
      await ctx.volumes.create({ Name: v.name, Labels: v.labels, anonymous: v.anonymous });
      if (!existed) {
        if (v.anonymous) volumesMade.push(v.name);
        else namedMade.push(v.name);
      }
      if (v.copyUp) {
        const from = resolveInRoot(rootfs, v.destination);
        if (from) await ctx.volumes.copyUp(v.name, from);
      }
    }
    writeJsonAtomic(join(dir, 'config.json'), built.spec);

    const rec: ContainerRecord = {
      id,
      name,
      created: new Date().toISOString(),
      config: built.config,
      hostConfig: built.hostConfig,
      request: req,
      image: image.id,
      imageRef: image.ref,
      imageName: req.Image,
      path: built.path,
      args: built.args,
      mounts: built.mounts,
      anonymousVolumes: volumesMade,
      state: { status: 'created', pid: 0, exitCode: 0, error: '', oomKilled: false, startedAt: ZERO_TIME, finishedAt: ZERO_TIME },
      restartCount: 0,
      manuallyStopped: false,
      snapshotKey,
      warnings: built.warnings,
    };
    ctx.save(rec, { durable: true });
    ctx.emit('create', rec);
    return { Id: id, Warnings: built.warnings };
  } catch (err) {
    try {
      if (mounted) unmountAll(rootfs);
      if (prepared) await ctx.images.service.releaseRootfs(snapshotKey);
      for (const v of [...volumesMade, ...namedMade]) await ctx.volumes.remove(v, { inUse: () => [] });
      ctx.store.remove(id);
    } catch (cleanupErr) {
      attachCleanupError(err, cleanupErr);
    }
    throw err;
  }
}

function readHostResolvConf(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
