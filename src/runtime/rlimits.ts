// Resource limits: the RLIMIT_* names of the runtime-spec, their numbers on Linux, the
// host's current limits (from /proc/self/limits, since Node has no getrlimit) and the
// clamping that a host without CAP_SYS_RESOURCE forces on us: a hard limit can only be
// lowered, never raised above the one we inherited.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../errors.js';
import type { Rlimit } from './spec.js';

/** Resource numbers from asm-generic/resource.h, shared by x86_64 and aarch64. */
export const RLIMITS = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
} as const;

export type RlimitName = keyof typeof RLIMITS;

export const RLIMIT_NAMES = Object.keys(RLIMITS) as RlimitName[];

/**
 * RLIM_INFINITY is 2^64-1; as a JSON number it arrives as the double 2^64 (the nearest
 * one), so anything at or above 2^64-1 means "unlimited".
 */
export const RLIM_INFINITY = 2 ** 64 - 1;

export type LimitValue = number | 'unlimited';

export interface HostRlimit {
  soft: LimitValue;
  hard: LimitValue;
}

export function isRlimitName(name: string): name is RlimitName {
  return Object.prototype.hasOwnProperty.call(RLIMITS, name);
}

/** The resource number of an RLIMIT_* name, or undefined if the name is unknown. */
export function rlimitNumber(name: string): number | undefined {
  return isRlimitName(name) ? RLIMITS[name] : undefined;
}

/** The RLIMIT_* name of a resource number, or undefined if there is none. */
export function rlimitName(resource: number): RlimitName | undefined {
  return RLIMIT_NAMES.find((name) => RLIMITS[name] === resource);
}

export function isUnlimited(value: number): boolean {
  return value >= RLIM_INFINITY;
}

// The row labels of /proc/<pid>/limits (fs/proc/base.c, lnames[]), in resource order.
const PROC_LIMITS_LABELS: Record<string, RlimitName> = {
  'Max cpu time': 'RLIMIT_CPU',
  'Max file size': 'RLIMIT_FSIZE',
  'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK',
  'Max core file size': 'RLIMIT_CORE',
  'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC',
  'Max open files': 'RLIMIT_NOFILE',
  'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS',
  'Max file locks': 'RLIMIT_LOCKS',
  'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE',
  'Max nice priority': 'RLIMIT_NICE',
  'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

function parseLimitValue(text: string, file: string, line: string): LimitValue {
  if (text === 'unlimited') return 'unlimited';
  if (!/^\d+$/.test(text)) {
    throw new BerthError('Internal', `${file}: cannot parse limit value "${text}" in line "${line}"`);
  }
  return Number(text);
}

/** Parses the text of /proc/<pid>/limits. Rows with unknown labels are skipped. */
export function parseProcLimits(text: string, file = '/proc/self/limits'): Partial<Record<RlimitName, HostRlimit>> {
  const result: Partial<Record<RlimitName, HostRlimit>> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('Limit ')) continue;
    // Columns are separated by runs of two or more spaces; labels contain single spaces.
    const columns = line.trim().split(/\s{2,}/);
    const name = PROC_LIMITS_LABELS[columns[0] ?? ''];
    if (name === undefined || columns.length < 3) continue;
    result[name] = {
      soft: parseLimitValue(columns[1]!, file, line),
      hard: parseLimitValue(columns[2]!, file, line),
    };
  }
  return result;
}

/** The limits of the calling process, read from `<procRoot>/self/limits`. */
export function readHostRlimits(procRoot = '/proc'): Partial<Record<RlimitName, HostRlimit>> {
  const file = join(procRoot, 'self', 'limits');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new BerthError('Unavailable', `read host resource limits from ${file}: ${(cause as Error).message}`, {
      cause,
      hint: 'is /proc mounted?',
    });
  }
  return parseProcLimits(text, file);
}

/** A `hostHard` callback for clampRlimits from the result of readHostRlimits. */
export function hostHardLimits(host: Partial<Record<RlimitName, HostRlimit>>): (resource: string) => LimitValue {
  return (resource) => {
    const limit = isRlimitName(resource) ? host[resource] : undefined;
    return limit === undefined ? 'unlimited' : limit.hard;
  };
}

function show(value: number): string {
  return isUnlimited(value) ? 'unlimited' : String(value);
}

export interface ClampResult {
  rlimits: Rlimit[];
  warnings: string[];
}

/**
 * Lowers every hard limit above the host's hard limit to it (and the soft limit to at most
 * the hard one), because without CAP_SYS_RESOURCE setrlimit cannot raise a hard limit.
 * The input is not modified.
 */
export function clampRlimits(rlimits: readonly Rlimit[], hostHard: (resource: string) => LimitValue): ClampResult {
  const warnings: string[] = [];
  const clamped = rlimits.map((limit) => {
    const host = hostHard(limit.type);
    if (host === 'unlimited' || limit.hard <= host) return { ...limit };
    const soft = Math.min(limit.soft, host);
    const softNote = soft !== limit.soft ? ` and soft limit ${show(limit.soft)} to ${soft}` : '';
    warnings.push(
      `${limit.type}: hard limit ${show(limit.hard)} is above the host's hard limit ${host}; ` +
        `lowered to ${host}${softNote} (raising a hard limit needs CAP_SYS_RESOURCE, which this host lacks)`,
    );
    return { type: limit.type, soft, hard: host };
  });
  return { rlimits: clamped, warnings };
}
