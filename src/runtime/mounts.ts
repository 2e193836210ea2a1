// Mount options → mount(2) flags, propagation and data, as the runtime-spec and runc read them.
import { BerthError } from '../errors.js';

export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  REMOUNT: 0x20,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOSYMFOLLOW: 0x100,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  MOVE: 0x2000,
  REC: 0x4000,
  SILENT: 0x8000,
  UNBINDABLE: 0x20000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  I_VERSION: 0x800000,
  STRICTATIME: 0x1000000,
  LAZYTIME: 0x2000000,
} as const;

// option → [set, flag] (set false clears the flag)
const FLAG_OPTIONS: Record<string, [boolean, number]> = {
  async: [false, MS.SYNCHRONOUS],
  atime: [false, MS.NOATIME],
  bind: [true, MS.BIND],
  defaults: [true, 0],
  dev: [false, MS.NODEV],
  diratime: [false, MS.NODIRATIME],
  dirsync: [true, MS.DIRSYNC],
  exec: [false, MS.NOEXEC],
  iversion: [true, MS.I_VERSION],
  lazytime: [true, MS.LAZYTIME],
  loud: [false, MS.SILENT],
  mand: [true, MS.MANDLOCK],
  noatime: [true, MS.NOATIME],
  nodev: [true, MS.NODEV],
  nodiratime: [true, MS.NODIRATIME],
  noexec: [true, MS.NOEXEC],
  noiversion: [false, MS.I_VERSION],
  nolazytime: [false, MS.LAZYTIME],
  nomand: [false, MS.MANDLOCK],
  norelatime: [false, MS.RELATIME],
  nostrictatime: [false, MS.STRICTATIME],
  nosuid: [true, MS.NOSUID],
  nosymfollow: [true, MS.NOSYMFOLLOW],
  rbind: [true, MS.BIND | MS.REC],
  relatime: [true, MS.RELATIME],
  remount: [true, MS.REMOUNT],
  ro: [true, MS.RDONLY],
  rw: [false, MS.RDONLY],
  silent: [true, MS.SILENT],
  strictatime: [true, MS.STRICTATIME],
  suid: [false, MS.NOSUID],
  sync: [true, MS.SYNCHRONOUS],
};

const PROPAGATION_OPTIONS: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

export interface ParsedMountOptions {
  flags: number;
  propagation: number[];
  data: string[];
}

/** Splits mount options into flags, propagation changes (in order) and the data string parts. */
export function parseMountOptions(options: readonly string[] = [], path = 'mounts[].options'): ParsedMountOptions {
  let flags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  options.forEach((opt, i) => {
    const flag = FLAG_OPTIONS[opt];
    if (flag) {
      flags = flag[0] ? flags | flag[1] : flags & ~flag[1];
    } else if (opt in PROPAGATION_OPTIONS) {
      propagation.push(PROPAGATION_OPTIONS[opt]);
    } else if (opt === 'idmap' || opt === 'ridmap') {
      throw new BerthError('FailedPrecondition', `${path}[${i}]: "${opt}" (id-mapped mounts) is not supported by berth yet`);
    } else if (opt === 'tmpcopyup') {
      // runc extension for tmpfs over an image directory; accepted and ignored like crun does without it
    } else if (opt === '') {
      throw new BerthError('InvalidArgument', `${path}[${i}]: empty mount option`);
    } else {
      data.push(opt);
    }
  });
  return { flags, propagation, data };
}

/** Parses a root propagation name (linux.rootfsPropagation). */
export function parsePropagation(name: string, path: string): number {
  const v = PROPAGATION_OPTIONS[name];
  if (v === undefined)
    throw new BerthError('InvalidArgument', `${path}: unknown propagation "${name}" (expected one of ${Object.keys(PROPAGATION_OPTIONS).join(', ')})`);
  return v;
}
