// Moving a process between cgroups takes the kernel's cgroup_threadgroup_rwsem for
// writing. When no migration happened in the last few milliseconds, that first waits for
// an RCU grace period (12-20 ms measured here, the largest single cost of starting a
// container); migrations that follow soon after are fast (~0.05 ms). Writing our own pid
// into the cgroup we are already in takes the same lock without moving anything, so
// starting it at the beginning of `create` lets the grace period pass while the
// container's cgroups are made and berth-exec starts, instead of after.
import { writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { CgroupHost } from './discover.js';

/** Starts the grace period early; resolves when it has passed. Never rejects. */
export async function warmCgroupMigration(host: CgroupHost): Promise<void> {
  const mount = host.v1[0] ?? host.v2;
  if (!mount) return;
  const key = host.v1[0] ? host.v1[0].controllers[0] : '';
  const own = host.own[key];
  if (own === undefined) return;
  const rel = mount.root !== '/' && own.startsWith(mount.root) ? own.slice(mount.root.length) || '/' : own;
  try {
    await writeFile(posix.join(mount.mountPoint, rel, 'cgroup.procs'), String(process.pid));
  } catch {
    // Only a speed-up: a host that refuses it (no permission, nsdelegate) pays later.
  }
}
