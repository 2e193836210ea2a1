// seccomp: errnoRet rules, argument comparisons, default actions, architectures.
import { test, after } from 'node:test';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { Suite } from './helpers/suite.js';
import { show } from './helpers/runtime.js';
import type { Spec } from './helpers/bundle.js';

const s = new Suite('sec');
const rt = s.rt;
after(() => s.assertClean());

type Seccomp = NonNullable<NonNullable<Spec['linux']>['seccomp']>;

function withSeccomp(seccomp: unknown): (sp: Spec) => void {
  return (sp) => (sp.linux!.seccomp = seccomp as Seccomp);
}

const ARCHES = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];

test('deny mkdir with errnoRet, everything else allowed', async () => {
  const { report } = await s.probe({
    extra: ['--try-syscall', 'mkdir', '--try-syscall', 'getpid', '--try-syscall', 'chmod:/tmp'],
    edit: withSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ARCHES,
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
    }),
  });
  assert.equal(report.seccomp, 2, 'seccomp filter mode');
  assert.equal(report.syscalls['mkdir']!.error, 'EACCES');
  assert.equal(report.syscalls['getpid']!.error, 'OK');
  assert.equal(report.syscalls['chmod:/tmp']!.error, 'OK');
});

test('SCMP_ACT_ERRNO without errnoRet returns EPERM', async () => {
  const { report } = await s.probe({
    extra: ['--try-syscall', 'chown:/tmp'],
    edit: withSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chown', 'fchownat', 'lchown'], action: 'SCMP_ACT_ERRNO' }] }),
  });
  assert.equal(report.syscalls['chown:/tmp']!.error, 'EPERM');
});

test('argument comparison: personality(8) denied, other personas allowed', async () => {
  const { report } = await s.probe({
    extra: ['--try-syscall', 'personality:8', '--try-syscall', 'personality', '--try-syscall', 'personality:0'],
    edit: withSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ARCHES,
      syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] }],
    }),
  });
  assert.equal(report.syscalls['personality:8']!.error, 'EPERM');
  assert.equal(report.syscalls['personality']!.error, 'OK');
  assert.equal(report.syscalls['personality:0']!.error, 'OK');
});

test('argument comparison with SCMP_CMP_MASKED_EQ and two args on one rule', async () => {
  // unshare(flags): deny when CLONE_NEWUTS (0x04000000) is among the flags.
  const { report } = await s.probe({
    extra: ['--try-syscall', 'unshare:0x04000000', '--try-syscall', 'unshare:0'],
    edit: withSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 22, args: [{ index: 0, value: 0x04000000, valueTwo: 0x04000000, op: 'SCMP_CMP_MASKED_EQ' }] }],
    }),
  });
  assert.equal(report.syscalls['unshare:0x04000000']!.error, 'EINVAL');
  assert.equal(report.syscalls['unshare:0']!.error, 'OK');
});

// Enough for a static C program and the runtime's final steps before execve.
const ALLOW = [
  'execve', 'execveat', 'brk', 'arch_prctl', 'set_tid_address', 'set_robust_list', 'rseq', 'prlimit64', 'getrlimit',
  'mprotect', 'mmap', 'munmap', 'mremap', 'madvise', 'readlink', 'readlinkat', 'getrandom', 'uname', 'open', 'openat',
  'openat2', 'read', 'write', 'writev', 'readv', 'pread64', 'close', 'close_range', 'fstat', 'newfstatat', 'lstat',
  'stat', 'statx', 'getdents64', 'getpid', 'getppid', 'gettid', 'getuid', 'getgid', 'geteuid', 'getegid', 'getgroups',
  'umask', 'getcwd', 'ioctl', 'lseek', 'exit', 'exit_group', 'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn',
  'sigaltstack', 'fcntl', 'futex', 'nanosleep', 'clock_nanosleep', 'clock_gettime', 'rename', 'renameat', 'renameat2',
  'unlink', 'unlinkat', 'dup', 'dup2', 'dup3', 'access', 'faccessat', 'faccessat2', 'capget', 'capset', 'prctl',
  'setgroups', 'setuid', 'setgid', 'setresuid', 'setresgid', 'fchdir', 'chdir', 'sched_yield', 'sched_getaffinity',
  'tgkill', 'tkill', 'kill', 'epoll_pwait', 'epoll_ctl', 'epoll_create1', 'pipe2', 'getpgrp', 'setsid', 'wait4',
  'waitid', 'poll', 'ppoll', 'select', 'pselect6', 'sendmsg', 'recvmsg', 'socket', 'connect', 'write', 'fstatfs',
  'statfs', 'getsockopt', 'setsockopt', 'sysinfo',
];

test('default action errno (defaultErrnoRet) with an allow list', async () => {
  const { report } = await s.probe({
    extra: ['--try-syscall', 'mkdir', '--try-syscall', 'personality', '--try-syscall', 'getpid'],
    edit: withSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 38,
      architectures: ARCHES,
      syscalls: [{ names: ALLOW, action: 'SCMP_ACT_ALLOW' }],
    }),
  });
  assert.equal(report.syscalls['mkdir']!.error, 'ENOSYS');
  assert.equal(report.syscalls['personality']!.error, 'ENOSYS');
  assert.equal(report.syscalls['getpid']!.error, 'OK');
});

test('SCMP_ACT_KILL kills the process', async () => {
  const b = s.bundle({
    args: ['/probe', 'report', '--try-syscall', 'personality:8'],
    edit: withSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['personality'], action: 'SCMP_ACT_KILL', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] }],
    }),
  });
  const r = await rt.run(s.id(), b.dir);
  assert.equal(r.code, 128 + 31, `killed by SIGSYS\n${show(r)}`);
});

test('an unknown syscall name in a rule is ignored', async () => {
  const { report } = await s.probe({
    extra: ['--try-syscall', 'mkdir'],
    edit: withSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['bt_no_such_syscall', 'mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
    }),
  });
  assert.equal(report.syscalls['mkdir']!.error, 'EPERM');
});

test('an unknown action is refused, naming it', async () => {
  const b = s.bundle({ edit: withSeccomp({ defaultAction: 'SCMP_ACT_BOGUS', syscalls: [] }) });
  const id = s.id();
  const r = await rt.run(id, b.dir);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /SCMP_ACT_BOGUS|defaultAction|action/i, show(r));
  assert.notEqual((await rt.cmd(['state', id])).code, 0);
});

test('no seccomp section → seccomp mode 0', async () => {
  const { report } = await s.probe({ edit: (sp) => delete sp.linux!.seccomp });
  assert.equal(report.seccomp, 0);
});

test('a compiled filter is cached by its rules and loaded from the cache the next time; a bad cache file is ignored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-seccomp-cache-'));
  const saved = process.env.BERTH_SECCOMP_CACHE;
  process.env.BERTH_SECCOMP_CACHE = dir;
  try {
    const opts = {
      extra: ['--try-syscall', 'mkdir', '--try-syscall', 'getpid'],
      edit: withSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ARCHES, syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] }),
    };
    const first = await s.probe(opts);
    assert.equal(first.report.syscalls['mkdir']!.error, 'EACCES');
    const files = readdirSync(dir);
    assert.equal(files.length, 1, `one cached filter: ${files.join(', ')}`);
    assert.match(files[0]!, /^[0-9a-f]{16}\.bpf$/);
    const second = await s.probe(opts);
    assert.equal(second.report.seccomp, 2);
    assert.equal(second.report.syscalls['mkdir']!.error, 'EACCES', 'the cached filter denies as the compiled one did');
    assert.equal(second.report.syscalls['getpid']!.error, 'OK');
    // A torn or foreign file (not whole BPF instructions) is compiled over, never loaded.
    writeFileSync(join(dir, files[0]!), 'garbage');
    const third = await s.probe(opts);
    assert.equal(third.report.syscalls['mkdir']!.error, 'EACCES');
  } finally {
    if (saved === undefined) delete process.env.BERTH_SECCOMP_CACHE;
    else process.env.BERTH_SECCOMP_CACHE = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});
