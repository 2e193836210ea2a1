// Linux capabilities by name and number, and the bit masks OP_CAPS carries (bit n = capability n).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../errors.js';

/** Every capability Linux defines, indexed by its number (include/uapi/linux/capability.h). */
export const CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** The highest capability number in the table above. */
export const CAP_LAST = CAPABILITIES.length - 1;

const byName = new Map<string, number>(CAPABILITIES.map((name, i) => [name, i]));

/** Docker's default set: what a container gets when its configuration names none. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** The number of a capability name ("CAP_SYS_ADMIN", any case), or undefined. */
export function capabilityNumber(name: string): number | undefined {
  return byName.get(name.toUpperCase());
}

/**
 * The bit mask of a list of names as the OCI spec writes them ("CAP_NET_ADMIN"; case does not
 * matter, the CAP_ prefix is required). `path` is the JSON path of the list, for errors
 * ("process.capabilities.bounding").
 */
export function capabilityMask(names: readonly string[], path: string): bigint {
  let mask = 0n;
  names.forEach((name, i) => {
    const n = typeof name === 'string' ? capabilityNumber(name) : undefined;
    if (n === undefined) {
      const bare = typeof name === 'string' && byName.has(`CAP_${name.toUpperCase()}`);
      throw new BerthError('InvalidArgument', `${path}[${i}]: unknown capability ${JSON.stringify(name)}`, {
        hint: bare
          ? `write it with the prefix: "CAP_${name.toUpperCase()}"`
          : `known capabilities are ${CAPABILITIES[0]} … ${CAPABILITIES[CAP_LAST]} (see capabilities(7))`,
      });
    }
    mask |= 1n << BigInt(n);
  });
  return mask;
}

/** The names of the bits set in a mask, lowest first; bits beyond the table read "CAP_<n>". */
export function capabilityNames(mask: bigint): string[] {
  const names: string[] = [];
  for (let bit = 0; mask >> BigInt(bit) !== 0n; bit++) {
    if ((mask >> BigInt(bit)) & 1n) names.push(CAPABILITIES[bit] ?? `CAP_${bit}`);
  }
  return names;
}

/** The highest capability number the running kernel knows (/proc/sys/kernel/cap_last_cap). */
export function lastCap(procRoot = '/proc'): number {
  const file = join(procRoot, 'sys/kernel/cap_last_cap');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new BerthError('Unavailable', `read ${file}: ${(cause as Error).message}`, {
      cause,
      hint: 'is /proc mounted?',
    });
  }
  const n = Number(text.trim());
  if (!Number.isInteger(n) || n < 0 || n > 63) {
    throw new BerthError('Internal', `${file}: unexpected content ${JSON.stringify(text.trim())}`);
  }
  return n;
}

/** Drops the capabilities the kernel does not know (numbers above `last`). */
export function clampToKernel(mask: bigint, last: number): bigint {
  return mask & ((1n << BigInt(last + 1)) - 1n);
}

/**
 * The bounding set of this process (CapBnd in /proc/self/status): a container can get no
 * capability outside it. All bits when the file cannot be read.
 */
export function ownBoundingSet(procRoot = '/proc'): bigint {
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync(join(procRoot, 'self/status'), 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : ~0n;
  } catch {
    return ~0n;
  }
}
