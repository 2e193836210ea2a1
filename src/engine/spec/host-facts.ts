// What the spec builder needs to know about the host, passed in (never read inside the
// builder) so that specs are unit-tested without a host. `readHostDevices` is the real
// device lister the daemon passes.
import { readdirSync, statSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { BerthError } from '../../errors.js';

export interface HostDevice {
  /** Path on the host. */
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

export interface HostDevices {
  /** The device at `path`, or every device below it when it is a directory; throws when it is neither. */
  lookup(path: string): HostDevice[];
  /** Every device of the host's /dev a privileged container gets. */
  all(): HostDevice[];
}

export interface SpecHostFacts {
  /** The host mounts only cgroup v2 (no v1 controllers): private cgroup namespace by default, no swappiness. */
  cgroupV2: boolean;
  /** Online CPUs: the upper bound of NanoCpus. */
  cpuCount: number;
  /** The host's online cpus and memory nodes ("0-3"), to check CpusetCpus/CpusetMems against. */
  onlineCpus?: string;
  onlineMems?: string;
  /** The daemon's own hard RLIMIT_NOFILE (the default containers get, at most 1048576). */
  nofileHard?: number;
  /** The host's hostname: a host-network or host-UTS container's. */
  hostname?: string;
  /** Node's name of the architecture (process.arch), for the default seccomp profile. */
  arch?: string;
  /** Device lookups for Devices and Privileged. */
  devices?: HostDevices;
}

/** major/minor of a Linux dev_t as glibc encodes it (gnu_dev_major/minor). */
export function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

function asDevice(path: string, st: Stats & { rdev: number | bigint }, rdev: bigint): HostDevice | undefined {
  const fmt = Number(st.mode) & S_IFMT;
  if (fmt !== S_IFCHR && fmt !== S_IFBLK) return undefined;
  return { path, type: fmt === S_IFCHR ? 'c' : 'b', ...splitDev(rdev), fileMode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid) };
}

// Nodes every container gets from its own /dev (devpts, shm, mqueue, console and ptmx):
// copying the host's would shadow them.
const SKIP = [/^\/dev\/pts(\/|$)/, /^\/dev\/shm(\/|$)/, /^\/dev\/mqueue(\/|$)/, /^\/dev\/console$/, /^\/dev\/ptmx$/];

function walk(dir: string, out: HostDevice[], depth: number): void {
  if (depth > 8) return;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const p = posix.join(dir, name);
    if (SKIP.some((re) => re.test(p))) continue;
    let st;
    try {
      st = statSync(p, { bigint: true });
    } catch {
      continue;
    }
    if (st.isDirectory()) walk(p, out, depth + 1);
    else {
      const d = asDevice(p, st as unknown as Stats & { rdev: bigint }, st.rdev);
      if (d) out.push(d);
    }
  }
}

/** The host's devices, read from `devRoot` (default /dev). */
export function readHostDevices(devRoot = '/dev'): HostDevices {
  return {
    lookup(path: string): HostDevice[] {
      let st;
      try {
        st = statSync(path, { bigint: true });
      } catch (err) {
        throw new BerthError('InvalidArgument', `error gathering device information while adding custom device "${path}": ${(err as NodeJS.ErrnoException).code ?? err}`, { cause: err });
      }
      if (st.isDirectory()) {
        const out: HostDevice[] = [];
        walk(path, out, 0);
        return out;
      }
      const d = asDevice(path, st as unknown as Stats & { rdev: bigint }, st.rdev);
      if (!d) throw new BerthError('InvalidArgument', `"${path}" is not a device node`);
      return [d];
    },
    all(): HostDevice[] {
      const out: HostDevice[] = [];
      walk(devRoot, out, 0);
      return out;
    },
  };
}
