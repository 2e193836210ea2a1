// Compiles the OCI `linux.seccomp` section into OP_SECCOMP_* plan ops, and provides the
// default profile. native/seccomp.c builds and loads the filter with libseccomp.
//
// What the ops carry (native/seccomp.c documents the same):
//   SECCOMP_INIT (action, errno)          action: the raw libseccomp value, errno already
//                                         folded in (SCMP_ACT_ERRNO(n) = 0x00050000 | n);
//                                         the errno argument repeats it for readability.
//   SECCOMP_ARCH (token)                  libseccomp arch name ("x86_64").
//   SECCOMP_RULE (name, action, errno, nargs, {index, op, value, valueTwo}*)
//   SECCOMP_LOAD (flags)                  kernel SECCOMP_FILTER_FLAG_* bits.
// Unknown syscall names and rules whose action equals the default are skipped by the
// executor (it asks libseccomp on the host), as runc does.

import { constants as osConstants } from 'node:os';
import { BerthError } from '../errors.js';
import { Op, type PlanArg, type PlanOp } from './plan.js';
import type { Seccomp, SeccompArg, SeccompSyscall } from './spec.js';
import { DEFAULT_CAPABILITIES } from './capabilities.js';

const EPERM = osConstants.errno.EPERM;
const ENOSYS = osConstants.errno.ENOSYS;

/** Raw libseccomp action values (seccomp.h); ERRNO and TRACE take their data in the low 16 bits. */
export const SeccompAction = {
  SCMP_ACT_KILL: 0x00000000,
  SCMP_ACT_KILL_THREAD: 0x00000000,
  SCMP_ACT_KILL_PROCESS: 0x80000000,
  SCMP_ACT_TRAP: 0x00030000,
  SCMP_ACT_ERRNO: 0x00050000,
  SCMP_ACT_TRACE: 0x7ff00000,
  SCMP_ACT_LOG: 0x7ffc0000,
  SCMP_ACT_ALLOW: 0x7fff0000,
  SCMP_ACT_NOTIFY: 0x7fc00000,
} as const;

/** enum scmp_compare. */
export const SeccompCompare = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
} as const;

/** OCI architecture → libseccomp arch token. */
export const SeccompArch: Readonly<Record<string, string>> = {
  SCMP_ARCH_X86: 'x86',
  SCMP_ARCH_X86_64: 'x86_64',
  SCMP_ARCH_X32: 'x32',
  SCMP_ARCH_ARM: 'arm',
  SCMP_ARCH_AARCH64: 'aarch64',
  SCMP_ARCH_MIPS: 'mips',
  SCMP_ARCH_MIPS64: 'mips64',
  SCMP_ARCH_MIPS64N32: 'mips64n32',
  SCMP_ARCH_MIPSEL: 'mipsel',
  SCMP_ARCH_MIPSEL64: 'mipsel64',
  SCMP_ARCH_MIPSEL64N32: 'mipsel64n32',
  SCMP_ARCH_PPC: 'ppc',
  SCMP_ARCH_PPC64: 'ppc64',
  SCMP_ARCH_PPC64LE: 'ppc64le',
  SCMP_ARCH_S390: 's390',
  SCMP_ARCH_S390X: 's390x',
  SCMP_ARCH_PARISC: 'parisc',
  SCMP_ARCH_PARISC64: 'parisc64',
  SCMP_ARCH_RISCV64: 'riscv64',
  SCMP_ARCH_LOONGARCH64: 'loongarch64',
  SCMP_ARCH_M68K: 'm68k',
  SCMP_ARCH_SH: 'sh',
  SCMP_ARCH_SHEB: 'sheb',
};

/**
 * Kernel SECCOMP_FILTER_FLAG_* bits. WAIT_KILLABLE_RECV only changes how a notify listener's
 * waiters sleep and the kernel refuses it without one; SCMP_ACT_NOTIFY is refused below, so
 * the flag is accepted and has nothing to act on (bit 0).
 */
export const SeccompFlag: Readonly<Record<string, number>> = {
  SECCOMP_FILTER_FLAG_TSYNC: 0x1,
  SECCOMP_FILTER_FLAG_LOG: 0x2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 0x4,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 0,
};

const U64_MAX = (1n << 64n) - 1n;

function invalid(path: string, message: string, hint?: string): BerthError {
  return new BerthError('InvalidArgument', `${path}: ${message}`, { hint });
}

function oneOf(table: object): string {
  return `one of ${Object.keys(table).join(', ')}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function list(v: unknown, path: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid(path, `must be an array, got ${JSON.stringify(v)}`);
  return v;
}

function errnoValue(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw invalid(path, `errno must be an integer from 0 to 65535, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * A u64 comparison value. JSON numbers above 2^53 arrive rounded; 18446744073709551615
 * (all bits set, common in profiles) rounds to 2^64 and is read back as all bits set.
 */
function u64(v: unknown, path: string): number | bigint {
  let big: bigint;
  if (typeof v === 'bigint') big = v;
  else if (typeof v === 'number' && Number.isInteger(v)) big = v === 2 ** 64 ? U64_MAX : BigInt(v);
  else throw invalid(path, `must be an unsigned 64-bit integer, got ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)}`);
  if (big < 0n || big > U64_MAX) throw invalid(path, `${big} is outside the unsigned 64-bit range`);
  return big > BigInt(Number.MAX_SAFE_INTEGER) ? big : Number(big);
}

/** The raw action value of an OCI action name and its errnoRet; errno is what the op reports. */
function action(name: unknown, errnoRet: unknown, path: string, errnoPath: string): { value: number; errno: number } {
  if (typeof name !== 'string' || !Object.hasOwn(SeccompAction, name)) {
    throw invalid(path, `unknown action ${JSON.stringify(name)}`, oneOf(SeccompAction));
  }
  const base = SeccompAction[name as keyof typeof SeccompAction];
  if (name === 'SCMP_ACT_ERRNO' || name === 'SCMP_ACT_TRACE') {
    const errno = errnoRet === undefined || errnoRet === null ? EPERM : errnoValue(errnoRet, errnoPath);
    return { value: base | errno, errno };
  }
  if (errnoRet !== undefined && errnoRet !== null) {
    throw invalid(errnoPath, `${name} does not return an errno`, 'errnoRet goes only with SCMP_ACT_ERRNO or SCMP_ACT_TRACE');
  }
  return { value: base, errno: 0 };
}

function compileArg(arg: unknown, path: string): PlanArg[] {
  if (!isObject(arg)) throw invalid(path, `must be an object, got ${JSON.stringify(arg)}`);
  const { index, value, valueTwo, op } = arg as Partial<Record<keyof SeccompArg, unknown>>;
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 5) {
    throw invalid(`${path}.index`, `must be an integer from 0 to 5, got ${JSON.stringify(index)}`);
  }
  if (typeof op !== 'string' || !Object.hasOwn(SeccompCompare, op)) {
    throw invalid(`${path}.op`, `unknown operator ${JSON.stringify(op)}`, oneOf(SeccompCompare));
  }
  return [
    index,
    SeccompCompare[op as keyof typeof SeccompCompare],
    u64(value, `${path}.value`),
    valueTwo === undefined || valueTwo === null ? 0 : u64(valueTwo, `${path}.valueTwo`),
  ];
}

function compileSyscall(sc: unknown, path: string, listenerPath: unknown): PlanOp[] {
  if (!isObject(sc)) throw invalid(path, `must be an object, got ${JSON.stringify(sc)}`);
  const { names, action: act, errnoRet, args } = sc as Partial<Record<keyof SeccompSyscall, unknown>>;
  const { value, errno } = action(act, errnoRet, `${path}.action`, `${path}.errnoRet`);
  if (act === 'SCMP_ACT_NOTIFY') {
    if (typeof listenerPath !== 'string' || listenerPath === '') {
      throw invalid(`${path}.action`, 'SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath', 'set listenerPath to the socket of the seccomp agent');
    }
    throw new BerthError('FailedPrecondition', `${path}.action: SCMP_ACT_NOTIFY is not supported by berth yet`, {
      hint: 'use SCMP_ACT_ERRNO, SCMP_ACT_TRACE or SCMP_ACT_LOG, or run this container with runc',
    });
  }
  const nameList = list(names, `${path}.names`);
  if (nameList.length === 0) throw invalid(`${path}.names`, 'must name at least one syscall');
  const cmp = list(args, `${path}.args`);
  if (cmp.length > 6) throw invalid(`${path}.args`, `at most 6 comparisons, got ${cmp.length}`);
  const flat = cmp.flatMap((a, i) => compileArg(a, `${path}.args[${i}]`));
  return nameList.map((name, i) => {
    if (typeof name !== 'string' || name === '') {
      throw invalid(`${path}.names[${i}]`, `must be a syscall name, got ${JSON.stringify(name)}`);
    }
    return { op: Op.SECCOMP_RULE, args: [name, value, errno, cmp.length, ...flat] };
  });
}

/**
 * Translates `linux.seccomp` into SECCOMP_INIT, SECCOMP_ARCH..., SECCOMP_RULE..., SECCOMP_LOAD.
 * `path` is the JSON path of the section, for error messages.
 */
export function compileSeccomp(seccomp: Seccomp, path = 'linux.seccomp'): PlanOp[] {
  if (!isObject(seccomp)) throw invalid(path, `must be an object, got ${JSON.stringify(seccomp)}`);
  const s = seccomp as Partial<Record<keyof Seccomp, unknown>>;
  if (s.defaultAction === 'SCMP_ACT_NOTIFY') {
    throw invalid(`${path}.defaultAction`, 'SCMP_ACT_NOTIFY cannot be the default action', 'notify only selected syscalls');
  }
  const def = action(s.defaultAction, s.defaultErrnoRet, `${path}.defaultAction`, `${path}.defaultErrnoRet`);
  const ops: PlanOp[] = [{ op: Op.SECCOMP_INIT, args: [def.value, def.errno] }];

  const seen = new Set<string>();
  list(s.architectures, `${path}.architectures`).forEach((arch, i) => {
    const token = typeof arch === 'string' && Object.hasOwn(SeccompArch, arch) ? SeccompArch[arch] : undefined;
    if (token === undefined) {
      throw invalid(`${path}.architectures[${i}]`, `unknown architecture ${JSON.stringify(arch)}`, oneOf(SeccompArch));
    }
    if (!seen.has(token)) ops.push({ op: Op.SECCOMP_ARCH, args: [token] });
    seen.add(token);
  });

  let flags = 0;
  list(s.flags, `${path}.flags`).forEach((flag, i) => {
    if (typeof flag !== 'string' || !Object.hasOwn(SeccompFlag, flag)) {
      throw invalid(`${path}.flags[${i}]`, `unknown flag ${JSON.stringify(flag)}`, oneOf(SeccompFlag));
    }
    flags |= SeccompFlag[flag];
  });

  list(s.syscalls, `${path}.syscalls`).forEach((sc, i) => {
    ops.push(...compileSyscall(sc, `${path}.syscalls[${i}]`, s.listenerPath));
  });
  ops.push({ op: Op.SECCOMP_LOAD, args: [flags] });
  return ops;
}

// ---- the default profile ----

/** What any program may do: Docker's default allow list, without the capability-gated parts. */
const ALLOWED = `
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday
getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel
ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup
io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr
lstat lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat
mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl
msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
_newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free
pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease
process_vm_readv process_vm_writev pselect6 pselect6_time64 ptrace pwrite64 pwritev pwritev2 read
readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction
rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile
sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32
setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt
set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown
sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64
statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
`;

/** Syscalls allowed only to containers that hold the capability (as Docker gates them). */
const BY_CAPABILITY: Readonly<Record<string, string>> = {
  CAP_SYS_ADMIN: `bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
    mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname
    setns syslog umount umount2 unshare`,
  CAP_DAC_READ_SEARCH: 'open_by_handle_at',
  CAP_SYS_BOOT: 'reboot kexec_load kexec_file_load',
  CAP_SYS_CHROOT: 'chroot',
  CAP_SYS_MODULE: 'delete_module init_module finit_module',
  CAP_SYS_PACCT: 'acct',
  CAP_SYS_PTRACE: 'kcmp pidfd_getfd process_madvise',
  CAP_SYS_RAWIO: 'iopl ioperm',
  CAP_SYS_TIME: 'settimeofday stime clock_settime clock_settime64',
  CAP_SYS_TTY_CONFIG: 'vhangup',
  CAP_SYS_NICE: 'get_mempolicy mbind set_mempolicy set_mempolicy_home_node',
  CAP_SYSLOG: 'syslog',
  CAP_BPF: 'bpf',
  CAP_PERFMON: 'perf_event_open',
};

/** Per host architecture: the OCI architectures to accept and the arch-specific syscalls. */
const BY_ARCH: Readonly<Record<string, { architectures: string[]; syscalls: string }>> = {
  x64: { architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], syscalls: 'arch_prctl modify_ldt' },
  ia32: { architectures: ['SCMP_ARCH_X86'], syscalls: 'modify_ldt' },
  arm64: {
    architectures: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
    syscalls: 'arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls',
  },
  arm: { architectures: ['SCMP_ARCH_ARM'], syscalls: 'arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls' },
  ppc64: { architectures: ['SCMP_ARCH_PPC64LE', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC'], syscalls: 'sync_file_range2 swapcontext' },
  s390x: { architectures: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'], syscalls: 's390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr' },
  riscv64: { architectures: ['SCMP_ARCH_RISCV64'], syscalls: 'riscv_flush_icache' },
};

/** Every CLONE_NEW* flag (and CLONE_NEWUSER): clone without CAP_SYS_ADMIN may set none of them. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/** personality(2) personas a container may switch to: Linux, 32-bit Linux, uname26, and the query. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

function words(s: string): string[] {
  return s.split(/\s+/).filter(Boolean);
}

export interface DefaultSeccompOptions {
  /** The container's capabilities (bounding set): syscalls that need one are allowed with it. */
  capabilities?: readonly string[];
  /** Node's name of the host architecture (process.arch). */
  arch?: string;
}

/**
 * Docker's default profile: everything not listed fails with EPERM; clone may not create
 * namespaces and clone3 fails with ENOSYS (so libc falls back to clone) unless the container
 * holds CAP_SYS_ADMIN; personality(2) only to the harmless personas.
 */
export function defaultSeccompProfile(options: DefaultSeccompOptions = {}): Seccomp {
  const caps = new Set((options.capabilities ?? DEFAULT_CAPABILITIES).map((c) => c.toUpperCase()));
  const host = BY_ARCH[options.arch ?? process.arch];
  const allow = (names: string[]): SeccompSyscall => ({ names, action: 'SCMP_ACT_ALLOW' });

  const syscalls: SeccompSyscall[] = [allow(words(ALLOWED))];
  syscalls.push({
    names: ['socket'],
    action: 'SCMP_ACT_ALLOW',
    args: [{ index: 0, value: 40 /* AF_VSOCK */, op: 'SCMP_CMP_NE' }],
  });
  for (const p of PERSONALITIES) {
    syscalls.push({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: p, op: 'SCMP_CMP_EQ' }] });
  }
  if (host) syscalls.push(allow(words(host.syscalls)));
  if (!caps.has('CAP_SYS_ADMIN')) {
    // s390 swaps clone's first two arguments.
    const flagsIndex = options.arch === 's390x' || (options.arch === undefined && process.arch === 's390x') ? 1 : 0;
    syscalls.push({
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: flagsIndex, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    });
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  }
  for (const [cap, names] of Object.entries(BY_CAPABILITY)) {
    if (caps.has(cap)) syscalls.push(allow(words(names)));
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    ...(host ? { architectures: [...host.architectures] } : {}),
    syscalls,
  };
}
