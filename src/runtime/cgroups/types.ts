// The cgroup manager contract. Implementations: v1.ts and v2.ts serve controllers of one
// hierarchy kind each; manager.ts routes every controller to the hierarchy that has it
// (so v1, v2 and hybrid hosts are the same code); factory.ts decides the layout.

import type { DeviceCgroup, Resources } from '../spec.js';

export type CgroupMode = 'v1' | 'v2' | 'hybrid';

/** Something applied with a caveat (e.g. a field this cgroup version cannot express). */
export interface CgroupWarning {
  /** Spec field path, e.g. "linux.resources.memory.kernel". */
  field: string;
  message: string;
}

export type FreezerState = 'frozen' | 'thawed';

export interface MemoryEntry {
  limit: number;
  usage: number;
  max: number;
  failcnt: number;
}

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

/** The shape of runc's `events --stats` data (runc types/events.go); uint64 as JS numbers. */
export interface CgroupStats {
  cpu: {
    usage: { total: number; percpu?: number[]; percpu_kernel?: number[]; percpu_user?: number[]; kernel: number; user: number };
    throttling: { periods: number; throttledPeriods: number; throttledTime: number };
  };
  memory: {
    cache: number;
    usage: MemoryEntry;
    swap: MemoryEntry;
    kernel: MemoryEntry;
    kernelTCP: MemoryEntry;
    raw: Record<string, number>;
  };
  pids: { current: number; limit: number };
  blkio: {
    ioServiceBytesRecursive: BlkioEntry[];
    ioServicedRecursive: BlkioEntry[];
  };
  hugetlb: Record<string, { usage: number; max: number; failcnt: number }>;
}

/** Serialised manager, stored in the container's state and loaded by loadCgroupManager(). */
export interface CgroupManagerJson {
  format: 'berth-cgroupfs/1';
  id: string;
  mode: CgroupMode;
  /** One entry per v1 hierarchy: its controllers and the container's directory in it. */
  v1: { controllers: string[]; dir: string }[];
  /** The container's cgroup2 directory and the controllers the v2 side serves. */
  v2?: { dir: string; mountPoint: string; controllers: string[] };
  /** Ancestor directories this manager may remove once empty (it created them). */
  removableParents: string[];
  /** Device rules last applied, kept so a later invocation can rebuild the v2 program. */
  devices?: DeviceCgroup[];
}

export interface CgroupManager {
  readonly mode: CgroupMode;
  /** controller → directory; "unified" is the cgroup2 directory when there is one. */
  paths(): Record<string, string>;
  /** Directories whose cgroup.procs a new container process must join (OP_CGROUP_JOIN). */
  joinDirs(): string[];
  procsFiles(): string[];
  create(): Promise<void>;
  apply(resources: Resources, field?: string): Promise<CgroupWarning[]>;
  update(resources: Resources, field?: string): Promise<CgroupWarning[]>;
  /**
   * The cgroup v2 device program (raw struct bpf_insn bytes) for OP_DEVICE_BPF on
   * paths().unified, from `devices` or else the rules last applied; undefined when the
   * devices controller is served by v1 or no rules were given.
   */
  deviceProgram(devices?: DeviceCgroup[]): Uint8Array | undefined;
  stats(): Promise<CgroupStats>;
  pids(): Promise<number[]>;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  state(): Promise<FreezerState>;
  kill(signal: NodeJS.Signals | number): Promise<void>;
  /** Number of OOM kills so far. */
  oomEvents(): Promise<number>;
  destroy(): Promise<void>;
  toJSON(): CgroupManagerJson;
}
