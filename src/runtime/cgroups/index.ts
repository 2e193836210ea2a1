// cgroups: one manager interface over cgroup v1, v2 and hybrid hosts.
export type {
  BlkioEntry,
  CgroupManager,
  CgroupManagerJson,
  CgroupMode,
  CgroupStats,
  CgroupWarning,
  FreezerState,
  MemoryEntry,
} from './types.js';
export { createCgroupManager, cgroupDir, DEFAULT_CGROUP_PARENT, type CreateCgroupManagerOptions } from './factory.js';
export { loadCgroupManager, type LoadCgroupManagerOptions } from './manager.js';
export {
  classify,
  discoverCgroupHost,
  discoverCgroupHostSync,
  parseCgroupHost,
  parseCgroupMounts,
  parseProcCgroup,
  type CgroupHost,
  type CgroupMount,
} from './discover.js';
export { kernelIo, type CgroupIo } from './cgroupfs.js';
export { compileDeviceProgram } from './device-bpf.js';
export { sharesToWeight, blkioWeightToIoWeight, swapToV2 } from './v2.js';
