// Moving a process between cgroups takes the kernel's cgroup_threadgroup_rwsem for
// writing. When no migration happened in the last few milliseconds, that first waits for
// an RCU grace period (12-20 ms measured here, the largest single cost of starting a
// container from a cold CLI); migrations right after it are fast (~0.05 ms).
import { writeFile } from 'node:fs/promises';
import { BerthError } from '../../errors.js';

/**
 * Moves a process into the container's cgroups (every cgroup.procs of the manager). The
 * first write may wait for the grace period, so it runs off the main thread and the caller
 * overlaps it with other work (applying limits, compiling the plan).
 */
export async function joinCgroups(procsFiles: string[], pid: number): Promise<void> {
  for (const file of procsFiles) {
    try {
      await writeFile(file, String(pid));
    } catch (err) {
      throw new BerthError('Internal', `move process ${pid} into ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`, {
        cause: err,
        hint: 'is the cgroup filesystem mounted read-write?',
      });
    }
  }
}
