// The launch plan: a flat, ordered list of operations that berth-exec (native/exec.c)
// executes without policy. native/plan.h is the contract; plan.test.ts checks that the
// numbers here match it.

export const PLAN_MAGIC = 'BRTP';
export const PLAN_VERSION = 1;

export const Op = {
  CGROUP_JOIN: 1,
  SETNS: 2,
  CONSOLE_SOCKET: 3,
  DEVICE_BPF: 4,
  MKFIFO: 5,
  CLONE: 10,
  UIDMAP: 11,
  GIDMAP: 12,
  SETGROUPS_DENY: 13,
  FOREGROUND: 14,
  CHILD: 19,
  SETSID: 20,
  MOUNT: 21,
  ROOTFS: 22,
  MKDIR: 23,
  MKNOD: 24,
  BIND_DEVICE: 25,
  SYMLINK: 26,
  SYNC: 27,
  HOOK: 28,
  PIVOT_ROOT: 29,
  MOVE_ROOT: 30,
  MASK_PATH: 31,
  READONLY_PATH: 32,
  SYSCTL: 33,
  HOSTNAME: 34,
  DOMAINNAME: 35,
  RLIMIT: 36,
  OOM_SCORE_ADJ: 37,
  REMOUNT_RO: 38,
  CONSOLE: 39,
  FIFO_OPEN: 40,
  WAIT_START: 41,
  APPARMOR: 42,
  SELINUX: 43,
  NO_NEW_PRIVS: 44,
  UMASK: 45,
  CHDIR: 46,
  USER: 47,
  CAPS: 48,
  NEW_KEYRING: 49,
  SECCOMP_INIT: 50,
  SECCOMP_ARCH: 51,
  SECCOMP_RULE: 52,
  SECCOMP_LOAD: 53,
  PERSONALITY: 54,
  IOPRIO: 55,
  SCHEDULER: 56,
  CPU_AFFINITY: 57,
  CLOSE_FDS: 60,
  EXEC: 61,
} as const;

export type OpCode = (typeof Op)[keyof typeof Op];

export const MountFlag = {
  IN_ROOT: 0x1,
  MKDIR: 0x2,
  BIND_REMOUNT: 0x4,
  PROPAGATION: 0x8,
  ENOENT_OK: 0x10,
} as const;

export const Msg = {
  PLAN: 1,
  CONTINUE: 2,
  PID: 10,
  SYNC: 11,
  CHILD_DONE: 12,
  ERROR: 13,
  EXIT: 14,
  WARNING: 15,
} as const;

/** An argument is an integer (i64) or a string/byte string. */
export type PlanArg = number | bigint | string | Uint8Array;

export interface PlanOp {
  op: OpCode;
  args: PlanArg[];
}

export type Plan = PlanOp[];

const opNames = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v, k]));

/** The name of an op code, for error messages ("MOUNT"). */
export function opName(code: number): string {
  return opNames.get(code) ?? `op ${code}`;
}

/** Serialises a plan to the wire format described in native/plan.h. */
export function encodePlan(plan: Plan): Buffer {
  // Sized first, then written into one buffer: a plan has ~1,000 arguments (most of them
  // seccomp rules), and a Buffer per argument cost more than the rest of the plan work.
  const strings = new Map<string, Buffer>();
  let size = 8;
  for (const { args } of plan) {
    size += 4;
    for (const arg of args) {
      if (typeof arg === 'number' || typeof arg === 'bigint') size += 9;
      else {
        const bytes = typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg;
        if (typeof arg === 'string') strings.set(arg, bytes as Buffer);
        size += 6 + bytes.length;
      }
    }
  }
  const buf = Buffer.alloc(size);
  buf.write(PLAN_MAGIC, 0, 'latin1');
  let off = buf.writeUInt32LE(PLAN_VERSION, 4);
  for (const { op, args } of plan) {
    off = buf.writeUInt16LE(op, off);
    off = buf.writeUInt16LE(args.length, off);
    for (const arg of args) {
      if (typeof arg === 'number' || typeof arg === 'bigint') {
        off = writeInt64(buf, arg, buf.writeUInt8(0, off));
      } else {
        const bytes = typeof arg === 'string' ? strings.get(arg)! : arg;
        off = buf.writeUInt32LE(bytes.length, buf.writeUInt8(1, off));
        buf.set(bytes, off);
        off += bytes.length + 1; // the NUL is already there (Buffer.alloc)
      }
    }
  }
  return buf;
}

/** i64 little endian; safe integers without a detour through BigInt. */
function writeInt64(buf: Buffer, v: number | bigint, off: number): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) {
    const hi = Math.floor(v / 2 ** 32);
    buf.writeUInt32LE(v - hi * 2 ** 32, off);
    return buf.writeInt32LE(hi, off + 4);
  }
  return buf.writeBigInt64LE(BigInt.asIntN(64, BigInt(v)), off);
}

/** Parses the wire format back (tests and debugging: `berth-oci --debug` prints plans). */
export function decodePlan(buf: Buffer): Plan {
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== PLAN_MAGIC) throw new Error('not a berth plan');
  const plan: Plan = [];
  let off = 8;
  while (off < buf.length) {
    const op = buf.readUInt16LE(off) as OpCode;
    const n = buf.readUInt16LE(off + 2);
    off += 4;
    const args: PlanArg[] = [];
    for (let i = 0; i < n; i++) {
      const kind = buf.readUInt8(off);
      off += 1;
      if (kind === 0) {
        const v = buf.readBigInt64LE(off);
        off += 8;
        args.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
      } else {
        const len = buf.readUInt32LE(off);
        off += 4;
        args.push(buf.toString('utf8', off, off + len));
        off += len + 1;
      }
    }
    plan.push({ op, args });
  }
  return plan;
}

/** Frames one channel message: u32 type, u32 length, payload. */
export function frameMessage(type: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(type, 0);
  h.writeUInt32LE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

/** Human-readable rendering of a plan, one op per line. */
export function formatPlan(plan: Plan): string {
  return plan
    .map(({ op, args }, i) => `${String(i).padStart(3)} ${opName(op)} ${args.map((a) => JSON.stringify(typeof a === 'bigint' ? a.toString() : typeof a === 'string' || typeof a === 'number' ? a : `<${a.length} bytes>`)).join(' ')}`)
    .join('\n');
}
