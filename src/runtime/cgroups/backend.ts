// What one kind of hierarchy (v1 or v2) does for the controllers it serves. manager.ts
// routes each resource group, stat and operation to the backend that serves it.

import { BerthError } from '../../errors.js';
import type { BlockIO, Cpu, DeviceCgroup, HugepageLimit, Memory, Network, Pids, Resources } from '../spec.js';
import type { CgroupDir } from './cgroupfs.js';
import type { CgroupStats, CgroupWarning, FreezerState } from './types.js';

/** Resource and operation groups, named after their v1 controllers. */
export type Group =
  | 'memory' | 'cpu' | 'cpuacct' | 'cpuset' | 'pids' | 'blkio' | 'hugetlb' | 'net_cls' | 'net_prio'
  | 'rdma' | 'devices' | 'freezer' | 'unified';

export interface ApplyOptions {
  /** Field path of the resources object, e.g. "linux.resources". */
  field: string;
  update: boolean;
  warnings: CgroupWarning[];
}

export type Rdma = NonNullable<Resources['rdma']>;

export interface CgroupBackend {
  readonly kind: 'v1' | 'v2';
  serves(group: Group): boolean;
  /** The directory that serves group (only called when serves(group)). */
  dirFor(group: Group, o: ApplyOptions): CgroupDir;
  /** Every directory of this backend, for joining and removal. */
  dirs(): string[];
  /** Creates the directories; returns the ones it made (ancestors included). */
  create(): Promise<string[]>;

  memory(m: Memory, o: ApplyOptions): Promise<void>;
  cpu(c: Cpu, o: ApplyOptions): Promise<void>;
  cpuset(c: Cpu, o: ApplyOptions): Promise<void>;
  pids(p: Pids, o: ApplyOptions): Promise<void>;
  blockIO(b: BlockIO, o: ApplyOptions): Promise<void>;
  hugetlb(limits: HugepageLimit[], o: ApplyOptions): Promise<void>;
  network(n: Network, o: ApplyOptions): Promise<void>;
  rdma(r: Rdma, o: ApplyOptions): Promise<void>;
  devices(rules: DeviceCgroup[], o: ApplyOptions): Promise<void>;
  unified(u: Record<string, string>, o: ApplyOptions): Promise<void>;

  cpuUsage(): Promise<CgroupStats['cpu']['usage']>;
  throttling(): Promise<CgroupStats['cpu']['throttling']>;
  memoryStats(): Promise<CgroupStats['memory']>;
  pidsStats(): Promise<CgroupStats['pids']>;
  blkioStats(): Promise<CgroupStats['blkio']>;
  hugetlbStats(): Promise<CgroupStats['hugetlb']>;
  oomKills(): Promise<number>;

  setFrozen(frozen: boolean): Promise<void>;
  freezerState(): Promise<FreezerState>;
}

export const UINT64_MAX = 18446744073709551615;

/** Hugepage size as the spec writes it ("2MB", "1GB", "64KB"); throws naming the field. */
export function checkPageSize(size: string, field: string): void {
  if (!/^\d+(KB|MB|GB)$/.test(size)) {
    throw new BerthError('InvalidArgument', `${field}: "${size}" is not a huge page size`, {
      hint: 'write it as the kernel names it, e.g. "2MB" or "1GB"',
    });
  }
}
