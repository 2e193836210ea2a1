// Finds what a test left behind on the host: mounts, cgroup dirs, processes, state dirs and
// named netns that mention the test's paths or container ids. `reap` then removes it, so a
// failing test does not poison the next one (or the machine).
import { readFileSync, readdirSync, readlinkSync, existsSync, statSync, rmdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export interface LeakScope {
  /** Host paths (bundles, --root dirs) nothing may stay mounted under or be used by. */
  paths: string[];
  /** Container ids: no cgroup dir or process may mention them afterwards. */
  ids: string[];
  /** --root dirs that must hold no container state afterwards. */
  roots: string[];
  /** Named network namespaces (ip netns) the test made and must have removed. */
  netns?: string[];
}

export interface Leak {
  kind: 'mount' | 'cgroup' | 'process' | 'state' | 'netns';
  what: string;
  /** For mounts: the mount point; for cgroups: the dir; for processes: the pid. */
  key: string;
}

const CGROUP_ROOT = '/sys/fs/cgroup';

interface MountLine {
  mountPoint: string;
  line: string;
}

function mountinfo(): MountLine[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const mp = line.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
      return { mountPoint: mp, line };
    });
}

function under(p: string, base: string): boolean {
  return p === base || p.startsWith(base.endsWith('/') ? base : base + '/');
}

/** Mounts in this mount namespace at or under any of the paths. */
export function mountsUnder(paths: string[]): MountLine[] {
  return mountinfo().filter((m) => paths.some((p) => under(m.mountPoint, p) || m.line.includes(p)));
}

function findCgroupDirs(ids: string[]): string[] {
  const found: string[] = [];
  if (ids.length === 0 || !existsSync(CGROUP_ROOT)) return found;
  const walk = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (ids.some((id) => e.name.includes(id))) found.push(p);
      else if (depth < 5) walk(p, depth + 1);
    }
  };
  for (const h of readdirSync(CGROUP_ROOT, { withFileTypes: true })) {
    if (h.isDirectory()) walk(join(CGROUP_ROOT, h.name), 1);
  }
  return found;
}

function safeReadlink(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '';
  }
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

interface ProcLeak {
  pid: number;
  why: string;
}

function findProcesses(scope: LeakScope): ProcLeak[] {
  const out: ProcLeak[] = [];
  const self = String(process.pid);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || name === self) continue;
    const base = `/proc/${name}`;
    const cmdline = safeRead(`${base}/cmdline`).split('\0').join(' ').trim();
    const cgroup = safeRead(`${base}/cgroup`);
    const links = ['cwd', 'root', 'exe'].map((l) => safeReadlink(`${base}/${l}`));
    let why = '';
    for (const id of scope.ids) {
      if (cgroup.includes(id)) why = `in cgroup of ${id}`;
      else if (new RegExp(`(^| )${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( |$)`).test(cmdline)) why = `command line names ${id}`;
      if (why) break;
    }
    if (!why) {
      for (const p of scope.paths) {
        if (links.some((l) => l && under(l.replace(/ \(deleted\)$/, ''), p))) why = `cwd/root/exe under ${p}`;
        else if (cmdline.includes(p)) why = `command line mentions ${p}`;
        if (why) break;
      }
    }
    if (why) out.push({ pid: Number(name), why: `${why}: pid ${name} ${cmdline.slice(0, 200)}` });
  }
  return out;
}

function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

/** Everything the scope left behind. Empty when clean. */
export function findLeaks(scope: LeakScope): Leak[] {
  const leaks: Leak[] = [];
  for (const m of mountsUnder(scope.paths)) leaks.push({ kind: 'mount', what: m.line, key: m.mountPoint });
  for (const d of findCgroupDirs(scope.ids)) leaks.push({ kind: 'cgroup', what: d, key: d });
  for (const p of findProcesses(scope)) leaks.push({ kind: 'process', what: p.why, key: String(p.pid) });
  for (const root of scope.roots) {
    if (!existsSync(root)) continue;
    for (const e of readdirSync(root)) {
      const p = join(root, e);
      if (statSync(p).isDirectory()) leaks.push({ kind: 'state', what: `state dir ${p} remains`, key: p });
    }
  }
  const ns = listNetns();
  for (const n of scope.netns ?? []) if (ns.includes(n)) leaks.push({ kind: 'netns', what: `netns ${n}`, key: n });
  return leaks;
}

function rmCgroupTree(dir: string): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return;
  }
  for (const e of entries) rmCgroupTree(join(dir, e));
  const procs = safeRead(join(dir, 'cgroup.procs')).split('\n').filter(Boolean);
  for (const p of procs) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      execFileSync('sleep', ['0.05']);
    }
  }
}

/** Best-effort removal of leaks (processes first, then mounts, cgroups, netns). */
export function reapLeaks(leaks: Leak[]): void {
  for (const l of leaks.filter((x) => x.kind === 'process')) {
    try {
      process.kill(Number(l.key), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  detachMounts(leaks.filter((x) => x.kind === 'mount').map((x) => x.key));
  for (const l of leaks.filter((x) => x.kind === 'cgroup')) rmCgroupTree(l.key);
  for (const l of leaks.filter((x) => x.kind === 'netns')) {
    try {
      execFileSync('ip', ['netns', 'delete', l.key], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
  }
}

/** Lazily unmounts the given mount points, deepest first (repeats for stacked mounts). */
export function detachMounts(points: string[]): void {
  const sorted = [...new Set(points)].sort((a, b) => b.length - a.length);
  for (const p of sorted) {
    for (let i = 0; i < 8; i++) {
      try {
        execFileSync('umount', ['-l', p], { stdio: 'ignore' });
      } catch {
        break;
      }
    }
  }
}

/** Unmounts everything under `path`; throws if something stays (so nobody rm -rf's through a mount). */
export function detachMountsUnder(path: string): void {
  detachMounts(mountsUnder([path]).map((m) => m.mountPoint).filter((p) => under(p, path)));
  const left = mountsUnder([path]).filter((m) => under(m.mountPoint, path));
  if (left.length > 0) throw new Error(`mounts remain under ${path}: ${left.map((m) => m.mountPoint).join(', ')}`);
}

export function describeLeaks(leaks: Leak[]): string {
  return leaks.map((l) => `${l.kind}: ${l.what}`).join('\n');
}
