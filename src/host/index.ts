// Kernel-facing helpers shared by every layer.
export { readProcStat, parseProcStat, processAlive, listPids, readLinkOr, waitForExit, type ProcStat } from './proc.js';
export { writeFileAtomic, writeJsonAtomic, type WriteOptions } from './fs-atomic.js';
