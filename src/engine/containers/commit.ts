// docker commit: the container's writable layer becomes a layer of a new image on top of the
// container's own image, with the container's config (changed by Dockerfile-like lines) as
// the image's. Deletions become OCI whiteouts (`.wh.NAME`), opaque directories the
// `.wh..wh..opq` marker. A running container is paused while its layer is read, as Docker
// does by default, so that the layer is one consistent state.
import { lstatSync, readlinkSync, createReadStream } from 'node:fs';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError, attachCleanupError } from '../../errors.js';
import { lgetxattr } from '../../host/sys.js';
import { TarWriter, type TarEntry } from '../../image/unpack/tar.js';
import type { ContainerConfig as OciContainerConfig, HealthConfig as OciHealthConfig } from '../../image/types.js';
import { imageNameFrom, parseChanges, type ImportChanges } from '../images.js';
import type { EngineContext } from '../context.js';
import type { CommitOptions, ContainerConfig } from '../types.js';
import { entryOf } from './archive.js';
import { ChangeKind, containerLayerChanges, type LayerChange } from './diff.js';
import { pauseContainer, unpauseContainer } from './stop.js';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
/** xattrs that travel with a file in a layer (file capabilities); overlay's own never do. */
const KEPT_XATTRS = ['security.capability'];

/** The layer tar of a change list read from the upper dir. */
export function layerTar(changes: LayerChange[]): Readable {
  const w = new TarWriter();
  const seenInodes = new Map<string, string>();
  const write = async (): Promise<void> => {
    for (const c of changes) {
      const rel = c.path.slice(1);
      if (c.kind === ChangeKind.Deleted) {
        // The parent's opaque marker already hides what an opaque directory covers.
        if (c.underOpaque) continue;
        const dir = posix.dirname(rel);
        const name = `${dir === '.' ? '' : `${dir}/`}${WHITEOUT_PREFIX}${posix.basename(rel)}`;
        await w.add({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: Math.floor(Date.now() / 1000) });
        continue;
      }
      const host = c.host!;
      const st = lstatSync(host);
      const entry: TarEntry = entryOf(st.isDirectory() ? `${rel}/` : rel, st, st.isSymbolicLink() ? readlinkSync(host) : undefined);
      const xattrs: Record<string, Buffer> = {};
      for (const name of KEPT_XATTRS) {
        const v = st.isSymbolicLink() ? undefined : lgetxattr(host, name);
        if (v !== undefined) xattrs[name] = v;
      }
      if (Object.keys(xattrs).length > 0) entry.xattrs = xattrs;
      if (entry.type === 'file' && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = seenInodes.get(key);
        if (first !== undefined) {
          await w.add({ ...entry, type: 'hardlink', size: 0, linkname: first });
          continue;
        }
        seenInodes.set(key, rel);
      }
      if (entry.type === 'file') await w.add(entry, createReadStream(host));
      else await w.add(entry);
      if (st.isDirectory() && c.opaque) await w.add({ name: `${rel}/${OPAQUE_MARKER}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: entry.mtime });
    }
    await w.finish();
  };
  void write().catch((err: unknown) => w.destroy(err as Error));
  return w;
}

/**
 * The image's config: Docker's order — the base (the request's `config`, else the
 * container's), then the change lines, then what the base left empty from the container's.
 */
export function commitConfig(container: ContainerConfig, base: ContainerConfig | undefined, changes: ImportChanges): OciContainerConfig {
  const c: ContainerConfig = { ...(base ?? container) };
  if (changes.Cmd) c.Cmd = changes.Cmd;
  if (changes.Entrypoint) c.Entrypoint = changes.Entrypoint;
  if (changes.WorkingDir) c.WorkingDir = changes.WorkingDir;
  if (changes.User !== undefined) c.User = changes.User;
  if (changes.StopSignal) c.StopSignal = changes.StopSignal;
  if (changes.Env) {
    const env = [...(c.Env ?? [])];
    for (const e of changes.Env) {
      const key = e.slice(0, e.indexOf('='));
      const at = env.findIndex((x) => x.split('=')[0] === key);
      if (at >= 0) env[at] = e;
      else env.push(e);
    }
    c.Env = env;
  }
  if (changes.Labels) c.Labels = { ...(c.Labels ?? {}), ...changes.Labels };
  if (changes.ExposedPorts) c.ExposedPorts = { ...(c.ExposedPorts ?? {}), ...changes.ExposedPorts };
  if (changes.Volumes) c.Volumes = { ...(c.Volumes ?? {}), ...changes.Volumes };
  if (base) {
    c.User ||= container.User;
    if (!c.Env?.length) c.Env = container.Env;
    else for (const e of container.Env ?? []) if (!c.Env.some((x) => x.split('=')[0] === e.split('=')[0])) c.Env.push(e);
    c.Labels = { ...(container.Labels ?? {}), ...(c.Labels ?? {}) };
    c.ExposedPorts = { ...(container.ExposedPorts ?? {}), ...(c.ExposedPorts ?? {}) };
    c.Volumes = { ...(container.Volumes ?? {}), ...(c.Volumes ?? {}) };
    if (!c.Entrypoint?.length) {
      if (!c.Cmd?.length) c.Cmd = container.Cmd;
      c.Entrypoint ??= container.Entrypoint;
    }
    c.WorkingDir ||= container.WorkingDir;
    c.StopSignal ||= container.StopSignal;
    c.Healthcheck ??= container.Healthcheck;
  }
  const out: OciContainerConfig = {};
  if (c.User) out.User = c.User;
  if (c.ExposedPorts && Object.keys(c.ExposedPorts).length > 0) out.ExposedPorts = c.ExposedPorts;
  if (c.Env?.length) out.Env = c.Env;
  if (c.Entrypoint?.length) out.Entrypoint = c.Entrypoint;
  if (c.Cmd?.length) out.Cmd = c.Cmd;
  if (c.Volumes && Object.keys(c.Volumes).length > 0) out.Volumes = c.Volumes;
  if (c.WorkingDir) out.WorkingDir = c.WorkingDir;
  if (c.Labels && Object.keys(c.Labels).length > 0) out.Labels = c.Labels;
  if (c.StopSignal) out.StopSignal = c.StopSignal;
  if (c.Healthcheck) out.Healthcheck = c.Healthcheck as OciHealthConfig;
  if (c.OnBuild?.length) out.OnBuild = c.OnBuild;
  if (c.Shell?.length) out.Shell = c.Shell;
  if (c.ArgsEscaped !== undefined) out.ArgsEscaped = c.ArgsEscaped;
  return out;
}

export async function commitContainer(ctx: EngineContext, idOrName: string, opts: CommitOptions): Promise<{ Id: string }> {
  const rec = ctx.find(idOrName);
  if (rec.state.status === 'removing' || rec.state.status === 'dead')
    throw new BerthError('Conflict', `cannot commit container ${rec.id.slice(0, 12)}: it is ${rec.state.status}`);
  if (opts.tag && !opts.repo) throw new BerthError('InvalidArgument', 'commit: a tag was given without a repository', { hint: 'pass repo as well as tag' });
  const name = opts.repo ? imageNameFrom(opts.repo, opts.tag, 'commit') : undefined;
  const config = commitConfig(rec.config, opts.config, parseChanges(opts.changes ?? []));
  const pause = opts.pause !== false && rec.state.status === 'running';
  if (pause) await pauseContainer(ctx, rec.id);
  let id: string;
  try {
    const layer = await containerLayerChanges(ctx, rec);
    id = await ctx.images.commitImage({
      parent: rec.image,
      layer: layer.length > 0 ? () => layerTar(layer) : undefined,
      config,
      name,
      author: opts.author,
      comment: opts.comment,
      createdBy: (rec.config.Cmd ?? []).join(' '),
    });
  } catch (err) {
    if (pause) await unpauseContainer(ctx, rec.id).catch((cleanupErr: unknown) => attachCleanupError(err, cleanupErr));
    throw err;
  }
  if (pause) await unpauseContainer(ctx, rec.id);
  ctx.emit('commit', rec, { comment: opts.comment ?? '', imageID: id, ...(name ? { imageRef: name } : {}) });
  return { Id: id };
}
