// Reading and writing cgroupfs files with errors that name the spec field and the file.

// Synchronous on purpose: cgroupfs answers from memory in microseconds, and a cold CLI
// spends more on starting the thread pool and scheduling promises than on the calls.
import { accessSync, closeSync, constants, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { BerthError, type ErrorCode } from '../../errors.js';
import type { CgroupWarning } from './types.js';

/** The one write primitive, injectable so tests can record every write (devices.allow...). */
export interface CgroupIo {
  write(file: string, data: string): Promise<void>;
}

/** Writes like the kernel expects: no O_CREAT (a missing file is an answer), one write. */
export const kernelIo: CgroupIo = {
  async write(file, data) {
    const fd = openSync(file, constants.O_WRONLY | constants.O_TRUNC);
    try {
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
  },
};

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** A cgroup directory plus the io and warning sink of one apply/update call. */
export class CgroupDir {
  constructor(
    readonly dir: string,
    readonly io: CgroupIo,
    readonly warnings: CgroupWarning[] = [],
  ) {}

  path(file: string): string {
    return `${this.dir}/${file}`;
  }

  async exists(file: string): Promise<boolean> {
    try {
      accessSync(this.path(file));
      return true;
    } catch {
      return false;
    }
  }

  async read(file: string): Promise<string> {
    return readFileSync(this.path(file), 'utf8').trim();
  }

  /** The file's content, or undefined when it does not exist. */
  async readOptional(file: string): Promise<string | undefined> {
    try {
      return await this.read(file);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Writes value; on failure a BerthError naming `field`, the file and what to do. */
  async write(file: string, value: string | number, field: string, missingHint?: string): Promise<void> {
    const data = String(value);
    try {
      await this.io.write(this.path(file), data);
    } catch (err) {
      throw writeError(err, { field, dir: this.dir, file, data, missingHint });
    }
  }

  warn(field: string, message: string): void {
    this.warnings.push({ field, message });
  }
}

function writeError(
  err: unknown,
  o: { field: string; dir: string; file: string; data: string; missingHint?: string },
): BerthError {
  const errno = errnoOf(err) ?? 'unknown error';
  const at = `${o.dir}/${o.file}`;
  let code: ErrorCode = 'Internal';
  let message = `${o.field}: writing "${o.data}" to ${at}: ${errno}`;
  let hint: string | undefined;
  switch (errno) {
    case 'ENOENT':
      code = 'FailedPrecondition';
      message = `${o.field}: ${o.file} not found in ${o.dir}`;
      hint = o.missingHint ?? 'this host\'s kernel or cgroup setup does not offer it; remove the field';
      break;
    case 'EINVAL':
    case 'ERANGE':
    case 'EOVERFLOW':
      code = 'InvalidArgument';
      hint = 'the kernel rejected the value; check its range and units';
      break;
    case 'EBUSY':
      code = 'FailedPrecondition';
      hint = 'the cgroup is in use in a way that forbids this change (e.g. usage above the new limit)';
      break;
    case 'EPERM':
    case 'EACCES':
      code = 'FailedPrecondition';
      hint = 'permission denied: run as root with write access to the cgroup filesystem';
      break;
    case 'EOPNOTSUPP':
    case 'ENOTSUP':
      code = 'FailedPrecondition';
      hint = 'this kernel does not support it; remove the field';
      break;
  }
  return new BerthError(code, message, { cause: err, hint });
}

/** A limit as cgroup files print it; "max" (cgroup2's unlimited) becomes `unlimited`. */
export function parseLimit(text: string | undefined, unlimited: number): number {
  if (text === undefined || text === '') return 0;
  if (text === 'max') return unlimited;
  const n = Number(text);
  return Number.isFinite(n) ? n : 0;
}

/** "key value" lines (memory.stat, cpu.stat, memory.events...) → record of numbers. */
export function parseKeyValues(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

export function parseNumber(text: string | undefined): number {
  const n = Number(text ?? '');
  return text && Number.isFinite(n) ? n : 0;
}

/** cgroup.procs of dir and every descendant. */
export async function collectPids(dir: string): Promise<number[]> {
  const out: number[] = [];
  const walk = async (d: string): Promise<void> => {
    let text: string;
    try {
      text = readFileSync(`${d}/cgroup.procs`, 'utf8');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return;
      throw err;
    }
    for (const line of text.split('\n')) if (line.trim()) out.push(Number(line));
    let entries: import('node:fs').Dirent[] = [];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      // vanished meanwhile
    }
    for (const e of entries) if (e.isDirectory()) await walk(`${d}/${e.name}`);
  };
  await walk(dir);
  return [...new Set(out)].sort((a, b) => a - b);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The names in dir, or none when it cannot be read (gone, not a directory). */
export function readdirOr(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** cpuset.cpus / cpuset.mems: the same files on v1 and v2. */
export async function writeCpuset(c: CgroupDir, cpu: { cpus?: string; mems?: string }, field: string): Promise<void> {
  if (cpu.cpus !== undefined) await c.write('cpuset.cpus', cpu.cpus, `${field}.cpu.cpus`);
  if (cpu.mems !== undefined) await c.write('cpuset.mems', cpu.mems, `${field}.cpu.mems`);
}

/** pids.max on v1 and v2: 0 leaves the limit as it is (as runc), a negative one lifts it. */
export async function writePids(c: CgroupDir, p: { limit: number }, field: string): Promise<void> {
  if (p.limit === 0) return;
  await c.write('pids.max', p.limit > 0 ? p.limit : 'max', `${field}.pids.limit`);
}
