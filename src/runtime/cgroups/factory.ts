// The one place that asks which cgroup version the host runs and lays the container out.

import { existsSync } from 'node:fs';
import { posix } from 'node:path';
import { BerthError } from '../../errors.js';
import type { CgroupIo } from './cgroupfs.js';
import { discoverCgroupHostSync, type CgroupHost, type CgroupMount } from './discover.js';
import { CgroupfsManager } from './manager.js';
import type { CgroupManager, CgroupManagerJson } from './types.js';

export interface CreateCgroupManagerOptions {
  /** linux.cgroupsPath: absolute → under each hierarchy root; relative → under our own cgroup. */
  cgroupsPath: string | undefined;
  id: string;
  /** The host layout; discovered from /proc when absent. */
  host?: CgroupHost;
  /** runc's --systemd-cgroup. */
  systemd?: boolean;
  io?: CgroupIo;
  /** Whether systemd runs as init (default: /run/systemd/system exists). */
  systemdRunning?: () => boolean;
}

export const DEFAULT_CGROUP_PARENT = '/berth';

function checkedPath(p: string, what: string): string {
  const parts = p.split('/');
  if (parts.includes('..') || p.includes('\0')) {
    throw new BerthError('InvalidArgument', `${what}: "${p}" may not contain ".." components`);
  }
  return posix.normalize(p);
}

/** The container's directory in one hierarchy. */
export function cgroupDir(mount: CgroupMount, ownPath: string | undefined, cgroupsPath: string): string {
  if (cgroupsPath.startsWith('/')) return posix.join(mount.mountPoint, cgroupsPath);
  let own = ownPath ?? '/';
  // Our own path is relative to the hierarchy; the mount may show only a subtree of it.
  if (mount.root !== '/' && (own === mount.root || own.startsWith(`${mount.root}/`))) own = own.slice(mount.root.length) || '/';
  return posix.join(mount.mountPoint, own, cgroupsPath);
}

export function createCgroupManager(opts: CreateCgroupManagerOptions): CgroupManager {
  if (opts.systemd) {
    const running = (opts.systemdRunning ?? (() => existsSync('/run/systemd/system')))();
    throw new BerthError(
      'FailedPrecondition',
      running
        ? 'systemd cgroup driver is not supported yet; drop --systemd-cgroup'
        : 'systemd cgroup driver is not supported: this host has no systemd running; drop --systemd-cgroup',
    );
  }
  if (!opts.id || opts.id.includes('/') || opts.id === '.' || opts.id === '..') {
    throw new BerthError('InvalidArgument', `container id "${opts.id}" cannot name a cgroup`);
  }
  const host = opts.host ?? discoverCgroupHostSync();
  const useDefault = opts.cgroupsPath === undefined || opts.cgroupsPath === '';
  const path = useDefault ? `${DEFAULT_CGROUP_PARENT}/${opts.id}` : checkedPath(opts.cgroupsPath!, 'linux.cgroupsPath');
  if (path === '/' || path === '.') {
    throw new BerthError('InvalidArgument', `linux.cgroupsPath: "${opts.cgroupsPath}" names a hierarchy root or our own cgroup`, {
      hint: 'give the container a cgroup of its own, e.g. "/berth/<id>"',
    });
  }
  const state: CgroupManagerJson = {
    format: 'berth-cgroupfs/1',
    id: opts.id,
    mode: host.mode,
    v1: host.v1.map((m) => ({ controllers: [...m.controllers], dir: cgroupDir(m, host.own[m.controllers[0]], path) })),
    removableParents: [],
  };
  if (host.v2) {
    state.v2 = { dir: cgroupDir(host.v2, host.own[''], path), mountPoint: host.v2.mountPoint, controllers: [...host.v2.controllers] };
  }
  // The default parent is ours whoever made it: the last container out removes it.
  if (useDefault) {
    for (const dir of [...state.v1.map((h) => h.dir), ...(state.v2 ? [state.v2.dir] : [])]) {
      const parent = posix.dirname(dir);
      if (!state.removableParents.includes(parent)) state.removableParents.push(parent);
    }
  }
  return new CgroupfsManager(state, { io: opts.io });
}
