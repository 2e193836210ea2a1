// What the host's cgroup layout is: from /proc/self/mountinfo, /proc/self/cgroup and the
// root cgroup.controllers of the cgroup2 mount. Parsing is pure so tests use fixture text.

import { readFileSync } from 'node:fs';
import { BerthError } from '../../errors.js';
import type { CgroupMode } from './types.js';

/** Controllers a v1 hierarchy can carry (plus named hierarchies such as "name=systemd"). */
export const V1_CONTROLLERS = new Set([
  'cpuset', 'cpu', 'cpuacct', 'blkio', 'memory', 'devices', 'freezer', 'net_cls', 'net_prio',
  'perf_event', 'hugetlb', 'pids', 'rdma', 'misc',
]);

export interface CgroupMount {
  mountPoint: string;
  /** The mount's root inside the hierarchy (field 4 of mountinfo), usually "/". */
  root: string;
  controllers: string[];
}

export interface CgroupHost {
  mode: CgroupMode;
  v1: CgroupMount[];
  /** The cgroup2 mount; controllers = its root cgroup.controllers. */
  v2?: CgroupMount;
  /** This process's cgroup per v1 controller (and "name=x"), and "" for cgroup2. */
  own: Record<string, string>;
}

function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** cgroup and cgroup2 mounts from mountinfo text; the first mount of each hierarchy wins. */
export function parseCgroupMounts(mountinfo: string): { v1: CgroupMount[]; v2?: CgroupMount } {
  const v1: CgroupMount[] = [];
  let v2: CgroupMount | undefined;
  const seen = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    if (!line.trim()) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 6 || fields.length < sep + 3) continue;
    const fstype = fields[sep + 1];
    const root = unescapeMountField(fields[3]);
    const mountPoint = unescapeMountField(fields[4]);
    if (fstype === 'cgroup2') {
      v2 ??= { mountPoint, root, controllers: [] };
    } else if (fstype === 'cgroup') {
      const controllers = fields[sep + 3]
        .split(',')
        .filter((o) => V1_CONTROLLERS.has(o) || o.startsWith('name='));
      const key = [...controllers].sort().join(',');
      if (controllers.length === 0 || seen.has(key)) continue;
      seen.add(key);
      v1.push({ mountPoint, root, controllers });
    }
  }
  return { v1, v2 };
}

/** /proc/self/cgroup: "id:controllers:path" lines → controller (or "" for v2) → path. */
export function parseProcCgroup(text: string): Record<string, string> {
  const own: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[2] === '') own[''] = m[3];
    else for (const c of m[2].split(',')) own[c] = m[3];
  }
  return own;
}

export function classify(v1: CgroupMount[], v2: CgroupMount | undefined): CgroupMode {
  const realV1 = v1.some((h) => h.controllers.some((c) => !c.startsWith('name=')));
  if (realV1) return v2 ? 'hybrid' : 'v1';
  if (v2) return 'v2';
  throw new BerthError('FailedPrecondition', 'no cgroup filesystem is mounted on this host', {
    hint: 'mount cgroup2 on /sys/fs/cgroup (or cgroup v1 hierarchies) and try again',
  });
}

export interface ParseCgroupHostInput {
  mountinfo: string;
  procSelfCgroup: string;
  /** Content of cgroup.controllers at the root of the cgroup2 mount ("" when absent). */
  v2Controllers?: string;
}

export function parseCgroupHost(input: ParseCgroupHostInput): CgroupHost {
  const { v1, v2 } = parseCgroupMounts(input.mountinfo);
  if (v2) v2.controllers = (input.v2Controllers ?? '').split(/\s+/).filter(Boolean);
  return { mode: classify(v1, v2), v1, v2, own: parseProcCgroup(input.procSelfCgroup) };
}

/** Reads the layout of the running host (procRoot is a parameter for tests and chroots). */
export async function discoverCgroupHost(procRoot = '/proc'): Promise<CgroupHost> {
  return discoverCgroupHostSync(procRoot);
}

/** discoverCgroupHost for callers that cannot await (a few small /proc and cgroupfs reads). */
export function discoverCgroupHostSync(procRoot = '/proc'): CgroupHost {
  const mountinfo = readFileSync(`${procRoot}/self/mountinfo`, 'utf8');
  const procSelfCgroup = readFileSync(`${procRoot}/self/cgroup`, 'utf8');
  const { v2 } = parseCgroupMounts(mountinfo);
  let v2Controllers = '';
  if (v2) {
    try {
      v2Controllers = readFileSync(`${v2.mountPoint}/cgroup.controllers`, 'utf8');
    } catch {
      v2Controllers = '';
    }
  }
  return parseCgroupHost({ mountinfo, procSelfCgroup, v2Controllers });
}
