// The container's own mounts from the request: Binds ("src:dst[:opts]"), Mounts (bind,
// volume, tmpfs), Tmpfs, and anonymous volumes for VOLUME paths; each as an OCI mount and
// as the MountPoint inspect shows. Volumes are only named here: the caller creates them.
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { Mount } from '../../runtime/spec.js';
import type { HostConfig, MountPoint, MountSpec } from '../types.js';
import { invalid, unsupported } from './invalid.js';

/** What is at a host path, as a bind mount needs to know. */
export type HostPathKind = 'directory' | 'file' | 'other' | 'missing';

/** A volume the container mounts; the caller creates it (if missing) before the container starts. */
export interface VolumeUse {
  name: string;
  destination: string;
  /** Created for this container (VOLUME, `-v /path`): removed with `docker rm -v`. */
  anonymous: boolean;
  /** Copy the image's content at `destination` into the volume when the volume is new/empty (Docker's default; `nocopy` turns it off). */
  copyUp: boolean;
  readOnly: boolean;
  labels?: Record<string, string>;
}

export interface UserMount {
  destination: string;
  mount: Mount;
  /** Absent for HostConfig.Tmpfs entries: Docker's inspect does not list them. */
  point?: MountPoint;
}

export interface MountsInput {
  hostConfig: HostConfig;
  /** The merged Config.Volumes (image VOLUMEs and the request's): anonymous volumes where nothing else is mounted. */
  configVolumes?: Record<string, object> | null;
  volumePath: (name: string) => string;
  hostPathKind: (path: string) => HostPathKind;
  /** Name generator for anonymous volumes (tests pass a deterministic one). */
  newVolumeName?: () => string;
}

export interface MountsResult {
  mounts: UserMount[];
  volumes: VolumeUse[];
  /** Host directories a Binds entry names that do not exist: Docker creates them (as root, 0755) before mounting. */
  hostDirsToCreate: string[];
  warnings: string[];
}

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const PROPAGATIONS = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);
const CONSISTENCY = new Set(['consistent', 'cached', 'delegated', 'default']);

export function randomVolumeName(): string {
  return randomBytes(32).toString('hex');
}

/** A cleaned absolute container path; "/" and relative paths are refused. */
export function containerDestination(dst: string, field: string): string {
  if (typeof dst !== 'string' || dst === '') throw invalid(field, 'the destination path is empty');
  if (!dst.startsWith('/')) throw invalid(field, `invalid mount path "${dst}": it must be absolute`);
  const clean = posix.normalize(dst).replace(/\/+$/, '') || '/';
  if (clean === '/') throw invalid(field, 'the destination cannot be "/"');
  return clean;
}

function bindOptions(readOnly: boolean, propagation: string, recursive = true): string[] {
  return [recursive ? 'rbind' : 'bind', readOnly ? 'ro' : 'rw', propagation];
}

export interface ParsedBind {
  source: string;
  destination: string;
  readOnly: boolean;
  propagation: string;
  noCopy: boolean;
  /** The mode text as given ("ro,Z"), which inspect shows. */
  mode: string;
  kind: 'bind' | 'volume';
  labelOption: boolean;
}

/** Parses one HostConfig.Binds entry. */
export function parseBind(entry: string, field: string): ParsedBind {
  const parts = entry.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw invalid(field, `invalid volume specification "${entry}"`, 'use "source:destination[:options]"');
  let source = '';
  let dst: string;
  let mode = '';
  if (parts.length === 1) dst = parts[0];
  else [source, dst, mode = ''] = parts;
  const destination = containerDestination(dst, field);
  const kind = source === '' || !source.startsWith('/') ? 'volume' : 'bind';
  if (kind === 'volume' && source !== '' && !VOLUME_NAME.test(source)) {
    throw invalid(field, `"${source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`, 'a bind mount source must be an absolute path');
  }
  let rw: string | undefined;
  let propagation: string | undefined;
  let label: string | undefined;
  let noCopy = false;
  for (const opt of mode === '' ? [] : mode.split(',')) {
    const dup = () => invalid(field, `invalid mode "${mode}": more than one ${opt}-like option`);
    if (opt === 'ro' || opt === 'rw') {
      if (rw) throw dup();
      rw = opt;
    } else if (opt === 'z' || opt === 'Z') {
      if (label) throw dup();
      label = opt;
    } else if (PROPAGATIONS.has(opt)) {
      if (propagation) throw dup();
      if (kind !== 'bind') throw invalid(field, `invalid mode "${mode}": propagation "${opt}" applies to bind mounts only`);
      propagation = opt;
    } else if (opt === 'nocopy') {
      if (kind !== 'volume') throw invalid(field, `invalid mode "${mode}": "nocopy" applies to volumes only`);
      noCopy = true;
    } else if (CONSISTENCY.has(opt)) {
      // macOS file-sharing hints; nothing to do on Linux, as with Docker.
    } else {
      throw invalid(field, `invalid mode "${mode}": unknown option "${opt}"`, 'options are ro, rw, z, Z, nocopy and a propagation (rprivate, private, rshared, shared, rslave, slave)');
    }
  }
  return { source, destination, readOnly: rw === 'ro', propagation: propagation ?? 'rprivate', noCopy, mode, kind, labelOption: label !== undefined };
}

const TMPFS_DATA = /^(size|mode|uid|gid|nr_inodes|nr_blocks|huge|mpol)=/;
const TMPFS_FLAGS = new Set([
  'ro', 'rw', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'sync', 'async', 'dirsync', 'atime', 'noatime',
  'diratime', 'nodiratime', 'relatime', 'norelatime', 'strictatime', 'nostrictatime', 'mand', 'nomand',
]);

/** Docker's tmpfs options for HostConfig.Tmpfs: noexec,nosuid,nodev, then the user's (which may undo them). */
export function parseTmpfsOptions(text: string, field: string): string[] {
  const out = ['noexec', 'nosuid', 'nodev'];
  for (const opt of text.split(',').map((o) => o.trim()).filter(Boolean)) {
    if (TMPFS_FLAGS.has(opt)) out.push(opt);
    else if (TMPFS_DATA.test(opt)) {
      if (opt.startsWith('size=') && !/^size=\d+[kmgKMG%]?$/.test(opt)) throw invalid(field, `invalid tmpfs size "${opt.slice(5)}"`, 'e.g. size=64m');
      if (opt.startsWith('mode=') && !/^mode=[0-7]{1,4}$/.test(opt)) throw invalid(field, `invalid tmpfs mode "${opt.slice(5)}"`, 'an octal mode, e.g. mode=1777');
      out.push(opt);
    } else throw invalid(field, `unknown tmpfs option "${opt}"`, 'e.g. "size=64m,mode=1777"');
  }
  return out;
}

function mountFromSpec(m: MountSpec, i: number, input: MountsInput, res: MountsResult, newName: () => string): UserMount {
  const field = `HostConfig.Mounts[${i}]`;
  const destination = containerDestination(m.Target, `${field}.Target`);
  const readOnly = m.ReadOnly === true;
  if (m.Consistency && !CONSISTENCY.has(m.Consistency)) throw invalid(`${field}.Consistency`, `unknown consistency "${m.Consistency}"`);
  if (m.Type !== 'bind' && m.BindOptions) throw invalid(`${field}.BindOptions`, `cannot be used with mount type "${m.Type}"`);
  if (m.Type !== 'volume' && m.VolumeOptions) throw invalid(`${field}.VolumeOptions`, `cannot be used with mount type "${m.Type}"`);
  if (m.Type !== 'tmpfs' && m.TmpfsOptions) throw invalid(`${field}.TmpfsOptions`, `cannot be used with mount type "${m.Type}"`);
  switch (m.Type) {
    case 'bind': {
      const src = m.Source ?? '';
      if (!src.startsWith('/')) throw invalid(`${field}.Source`, `invalid bind source "${src}": it must be an absolute path`);
      const o = m.BindOptions ?? {};
      const propagation = o.Propagation || 'rprivate';
      if (!PROPAGATIONS.has(propagation)) throw invalid(`${field}.BindOptions.Propagation`, `unknown propagation "${propagation}"`);
      if (input.hostPathKind(src) === 'missing') {
        if (!o.CreateMountpoint) throw invalid(`${field}.Source`, `bind source path does not exist: ${src}`, 'create it first or set BindOptions.CreateMountpoint');
        res.hostDirsToCreate.push(src);
      }
      return {
        destination,
        mount: { destination, type: 'bind', source: src, options: bindOptions(readOnly, propagation, !o.NonRecursive) },
        point: { Type: 'bind', Source: src, Destination: destination, Mode: '', RW: !readOnly, Propagation: propagation },
      };
    }
    case 'volume': {
      const o = m.VolumeOptions ?? {};
      const driver = o.DriverConfig?.Name ?? '';
      if (driver !== '' && driver !== 'local') throw unsupported(`${field}.VolumeOptions.DriverConfig.Name`, `volume driver "${driver}"`, 'only the local driver exists');
      if (Object.keys(o.DriverConfig?.Options ?? {}).length > 0) throw unsupported(`${field}.VolumeOptions.DriverConfig.Options`, 'local volume driver options');
      const anonymous = !m.Source;
      if (!anonymous && !VOLUME_NAME.test(m.Source!)) throw invalid(`${field}.Source`, `"${m.Source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`);
      const name = anonymous ? newName() : m.Source!;
      res.volumes.push({ name, destination, anonymous, copyUp: !o.NoCopy, readOnly, ...(o.Labels ? { labels: o.Labels } : {}) });
      const source = input.volumePath(name);
      return {
        destination,
        mount: { destination, type: 'bind', source, options: bindOptions(readOnly, 'rprivate') },
        point: { Type: 'volume', Name: name, Source: source, Destination: destination, Driver: 'local', Mode: '', RW: !readOnly, Propagation: '' },
      };
    }
    case 'tmpfs': {
      if (m.Source) throw invalid(`${field}.Source`, 'a tmpfs mount takes no source');
      const o = m.TmpfsOptions ?? {};
      const opts = ['noexec', 'nosuid', 'nodev'];
      if (readOnly) opts.push('ro');
      if (o.SizeBytes !== undefined && o.SizeBytes !== 0) {
        if (!Number.isInteger(o.SizeBytes) || o.SizeBytes < 0) throw invalid(`${field}.TmpfsOptions.SizeBytes`, `must be a positive integer, got ${o.SizeBytes}`);
        opts.push(`size=${o.SizeBytes}`);
      }
      if (o.Mode !== undefined && o.Mode !== 0) {
        if (!Number.isInteger(o.Mode) || o.Mode < 0 || o.Mode > 0o7777) throw invalid(`${field}.TmpfsOptions.Mode`, `must be a file mode (0 to 07777), got ${o.Mode}`);
        opts.push(`mode=${o.Mode.toString(8)}`);
      }
      return {
        destination,
        mount: { destination, type: 'tmpfs', source: 'tmpfs', options: opts },
        point: { Type: 'tmpfs', Source: '', Destination: destination, Mode: '', RW: !readOnly, Propagation: '' },
      };
    }
    default:
      throw unsupported(`${field}.Type`, `mount type "${m.Type}"`, 'use bind, volume or tmpfs');
  }
}

/** Mounts of Binds, Mounts, Tmpfs and Config.Volumes; duplicate destinations are refused. */
export function buildUserMounts(input: MountsInput): MountsResult {
  const hc = input.hostConfig;
  const newName = input.newVolumeName ?? randomVolumeName;
  const res: MountsResult = { mounts: [], volumes: [], hostDirsToCreate: [], warnings: [] };
  const seen = new Map<string, string>();
  const add = (m: UserMount, field: string) => {
    const prev = seen.get(m.destination);
    if (prev) throw invalid(field, `duplicate mount point: ${m.destination} (also in ${prev})`);
    seen.set(m.destination, field);
    res.mounts.push(m);
  };

  (hc.Binds ?? []).forEach((entry, i) => {
    const field = `HostConfig.Binds[${i}]`;
    const b = parseBind(entry, field);
    if (b.labelOption) res.warnings.push(`${field}: the SELinux relabel option (z/Z) is ignored: this host has no SELinux`);
    if (b.kind === 'bind') {
      if (input.hostPathKind(b.source) === 'missing') res.hostDirsToCreate.push(b.source);
      add(
        {
          destination: b.destination,
          mount: { destination: b.destination, type: 'bind', source: b.source, options: bindOptions(b.readOnly, b.propagation) },
          point: { Type: 'bind', Source: b.source, Destination: b.destination, Mode: b.mode, RW: !b.readOnly, Propagation: b.propagation },
        },
        field,
      );
    } else {
      const anonymous = b.source === '';
      const name = anonymous ? newName() : b.source;
      const source = input.volumePath(name);
      res.volumes.push({ name, destination: b.destination, anonymous, copyUp: !b.noCopy, readOnly: b.readOnly });
      add(
        {
          destination: b.destination,
          mount: { destination: b.destination, type: 'bind', source, options: bindOptions(b.readOnly, 'rprivate') },
          point: { Type: 'volume', Name: name, Source: source, Destination: b.destination, Driver: 'local', Mode: b.mode, RW: !b.readOnly, Propagation: '' },
        },
        field,
      );
    }
  });
  (hc.Mounts ?? []).forEach((m, i) => add(mountFromSpec(m, i, input, res, newName), `HostConfig.Mounts[${i}]`));
  for (const [dst, text] of Object.entries(hc.Tmpfs ?? {})) {
    const field = `HostConfig.Tmpfs["${dst}"]`;
    const destination = containerDestination(dst, field);
    add({ destination, mount: { destination, type: 'tmpfs', source: 'tmpfs', options: parseTmpfsOptions(text ?? '', field) } }, field);
  }
  for (const dst of Object.keys(input.configVolumes ?? {})) {
    const destination = containerDestination(dst, `Config.Volumes["${dst}"]`);
    if (seen.has(destination)) continue;
    const name = newName();
    const source = input.volumePath(name);
    res.volumes.push({ name, destination, anonymous: true, copyUp: true, readOnly: false });
    add(
      {
        destination,
        mount: { destination, type: 'bind', source, options: bindOptions(false, 'rprivate') },
        point: { Type: 'volume', Name: name, Source: source, Destination: destination, Driver: 'local', Mode: '', RW: true, Propagation: '' },
      },
      `Config.Volumes["${dst}"]`,
    );
  }
  return res;
}

/** Parents before children, so that a mount under another one is not hidden by it (Docker sorts the same way). */
export function sortMounts<T extends { destination: string }>(mounts: T[]): T[] {
  const depth = (p: string) => p.split('/').filter(Boolean).length;
  return [...mounts].sort((a, b) => depth(a.destination) - depth(b.destination));
}
