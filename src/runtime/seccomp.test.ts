import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError, type ErrorCode } from '../errors.js';
import { Op, decodePlan, encodePlan, type PlanOp } from './plan.js';
import type { Seccomp } from './spec.js';
import { SeccompAction, SeccompArch, SeccompCompare, compileSeccomp, defaultSeccompProfile } from './seccomp.js';

function rules(ops: PlanOp[]): PlanOp[] {
  return ops.filter((o) => o.op === Op.SECCOMP_RULE);
}

function fails(profile: unknown, code: ErrorCode, message: string): void {
  assert.throws(
    () => compileSeccomp(profile as Seccomp),
    (err: unknown) => {
      assert.ok(isBerthError(err, code), `expected BerthError ${code}, got ${String(err)}`);
      assert.equal(err.message, message);
      return true;
    },
  );
}

test('INIT first, LOAD last, with the raw default action', () => {
  const ops = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW' });
  assert.deepEqual(ops, [
    { op: Op.SECCOMP_INIT, args: [0x7fff0000, 0] },
    { op: Op.SECCOMP_LOAD, args: [0] },
  ]);
});

test('default errno: EPERM unless defaultErrnoRet', () => {
  assert.deepEqual(compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO' })[0]!.args, [0x00050001, 1]);
  assert.deepEqual(compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38 })[0]!.args, [0x00050026, 38]);
  assert.deepEqual(compileSeccomp({ defaultAction: 'SCMP_ACT_TRACE', defaultErrnoRet: 7 })[0]!.args, [0x7ff00007, 7]);
});

test('every action translates to its libseccomp value', () => {
  const expected: Record<string, [number, number]> = {
    SCMP_ACT_KILL: [0, 0],
    SCMP_ACT_KILL_THREAD: [0, 0],
    SCMP_ACT_KILL_PROCESS: [0x80000000, 0],
    SCMP_ACT_TRAP: [0x00030000, 0],
    SCMP_ACT_ERRNO: [0x00050001, 1],
    SCMP_ACT_TRACE: [0x7ff00001, 1],
    SCMP_ACT_LOG: [0x7ffc0000, 0],
    SCMP_ACT_ALLOW: [0x7fff0000, 0],
  };
  for (const [action, [value, errno]] of Object.entries(expected)) {
    const [rule] = rules(compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action }] }));
    assert.deepEqual(rule!.args, ['getpid', value, errno, 0], action);
  }
  const [rule] = rules(compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] }));
  assert.deepEqual(rule!.args, ['mkdir', 0x0005000d, 13, 0]);
  assert.equal(Object.keys(SeccompAction).length, Object.keys(expected).length + 1 /* NOTIFY */);
});

test('one rule per name, in order, with the arguments flattened', () => {
  const ops = compileSeccomp({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      {
        names: ['personality'],
        action: 'SCMP_ACT_ALLOW',
        args: [
          { index: 0, value: 8, op: 'SCMP_CMP_EQ' },
          { index: 1, value: 0xff, valueTwo: 0x10, op: 'SCMP_CMP_MASKED_EQ' },
        ],
      },
    ],
  });
  assert.deepEqual(rules(ops).map((r) => r.args), [
    ['read', 0x7fff0000, 0, 0],
    ['write', 0x7fff0000, 0, 0],
    ['personality', 0x7fff0000, 0, 2, 0, 4, 8, 0, 1, 7, 0xff, 0x10],
  ]);
});

test('every comparison operator translates', () => {
  const expected: Record<string, number> = {
    SCMP_CMP_NE: 1, SCMP_CMP_LT: 2, SCMP_CMP_LE: 3, SCMP_CMP_EQ: 4, SCMP_CMP_GE: 5, SCMP_CMP_GT: 6, SCMP_CMP_MASKED_EQ: 7,
  };
  assert.deepEqual({ ...SeccompCompare }, expected);
  for (const [op, n] of Object.entries(expected)) {
    const [rule] = rules(compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_KILL', args: [{ index: 5, value: 1, op }] }] }));
    assert.deepEqual(rule!.args.slice(3), [1, 5, n, 1, 0], op);
  }
});

test('u64 values: numbers up to 2^53 stay numbers, larger ones become bigints', () => {
  const compile = (value: number | bigint) =>
    rules(compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_KILL', args: [{ index: 0, value: value as number, valueTwo: value as number, op: 'SCMP_CMP_EQ' }] }] }))[0]!.args.slice(6);
  assert.deepEqual(compile(Number.MAX_SAFE_INTEGER), [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]);
  assert.deepEqual(compile(2 ** 60), [2n ** 60n, 2n ** 60n]);
  assert.deepEqual(compile(0xffffffffffffffffn), [0xffffffffffffffffn, 0xffffffffffffffffn]);
  // JSON.parse('18446744073709551615') === 2 ** 64: read as all bits set.
  assert.deepEqual(compile(JSON.parse('18446744073709551615') as number), [0xffffffffffffffffn, 0xffffffffffffffffn]);
  // And it survives the wire format as the same 64 bits.
  const plan = decodePlan(encodePlan(rules(compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_KILL', args: [{ index: 0, value: 2 ** 64, op: 'SCMP_CMP_EQ' }] }] }))));
  assert.equal(BigInt.asUintN(64, BigInt(plan[0]!.args[6] as number | bigint)), 0xffffffffffffffffn);
});

test('architectures map to libseccomp tokens, deduplicated, in order', () => {
  const ops = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_X86'] });
  assert.deepEqual(ops.filter((o) => o.op === Op.SECCOMP_ARCH).map((o) => o.args[0]), ['x86_64', 'x86', 'x32']);
  for (const [oci, token] of Object.entries(SeccompArch)) {
    const [, arch] = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: [oci] });
    assert.deepEqual(arch, { op: Op.SECCOMP_ARCH, args: [token] });
    assert.equal(token, oci.slice('SCMP_ARCH_'.length).toLowerCase());
  }
  assert.equal(SeccompArch.SCMP_ARCH_AARCH64, 'aarch64');
  assert.equal(SeccompArch.SCMP_ARCH_ARM, 'arm');
});

test('flags become the kernel bit mask on LOAD', () => {
  const load = (flags: string[]) => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags }).at(-1)!;
  assert.deepEqual(load(['SECCOMP_FILTER_FLAG_TSYNC']), { op: Op.SECCOMP_LOAD, args: [1] });
  assert.deepEqual(load(['SECCOMP_FILTER_FLAG_LOG']).args, [2]);
  assert.deepEqual(load(['SECCOMP_FILTER_FLAG_SPEC_ALLOW']).args, [4]);
  assert.deepEqual(load(['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW']).args, [7]);
  assert.deepEqual(load(['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV']).args, [0]);
});

test('invalid values fail with the exact JSON path', () => {
  fails({ defaultAction: 'SCMP_ACT_FOO' }, 'InvalidArgument', 'linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"');
  fails({}, 'InvalidArgument', 'linux.seccomp.defaultAction: unknown action undefined');
  fails({ defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }, 'InvalidArgument', 'linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW does not return an errno');
  fails({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: -1 }, 'InvalidArgument', 'linux.seccomp.defaultErrnoRet: errno must be an integer from 0 to 65535, got -1');
  fails({ defaultAction: 'SCMP_ACT_NOTIFY' }, 'InvalidArgument', 'linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action');
  fails({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_Z80'] }, 'InvalidArgument', 'linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80"');
  fails({ defaultAction: 'SCMP_ACT_ALLOW', architectures: 'x86_64' }, 'InvalidArgument', 'linux.seccomp.architectures: must be an array, got "x86_64"');
  fails({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_NEW_LISTENER'] }, 'InvalidArgument', 'linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"');
  const sc = (syscall: unknown) => ({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW' }, { names: ['b'], action: 'SCMP_ACT_ALLOW' }, { names: ['c'], action: 'SCMP_ACT_ALLOW' }, syscall] });
  fails(sc({ names: ['x'], action: 'SCMP_ACT_FOO' }), 'InvalidArgument', 'linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"');
  fails(sc({ names: ['x'], action: 'SCMP_ACT_KILL', errnoRet: 1 }), 'InvalidArgument', 'linux.seccomp.syscalls[3].errnoRet: SCMP_ACT_KILL does not return an errno');
  fails(sc({ names: ['x'], action: 'SCMP_ACT_ERRNO', errnoRet: 1.5 }), 'InvalidArgument', 'linux.seccomp.syscalls[3].errnoRet: errno must be an integer from 0 to 65535, got 1.5');
  fails(sc({ names: [], action: 'SCMP_ACT_ALLOW' }), 'InvalidArgument', 'linux.seccomp.syscalls[3].names: must name at least one syscall');
  fails(sc({ action: 'SCMP_ACT_ALLOW' }), 'InvalidArgument', 'linux.seccomp.syscalls[3].names: must name at least one syscall');
  fails(sc({ names: ['ok', 7], action: 'SCMP_ACT_ALLOW' }), 'InvalidArgument', 'linux.seccomp.syscalls[3].names[1]: must be a syscall name, got 7');
  fails(sc('read'), 'InvalidArgument', 'linux.seccomp.syscalls[3]: must be an object, got "read"');
  const arg = (a: unknown) => sc({ names: ['x'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }, a] });
  fails(arg({ index: 6, value: 0, op: 'SCMP_CMP_EQ' }), 'InvalidArgument', 'linux.seccomp.syscalls[3].args[1].index: must be an integer from 0 to 5, got 6');
  fails(arg({ value: 0, op: 'SCMP_CMP_EQ' }), 'InvalidArgument', 'linux.seccomp.syscalls[3].args[1].index: must be an integer from 0 to 5, got undefined');
  fails(arg({ index: 1, value: 0, op: 'SCMP_CMP_XOR' }), 'InvalidArgument', 'linux.seccomp.syscalls[3].args[1].op: unknown operator "SCMP_CMP_XOR"');
  fails(arg({ index: 1, value: -1, op: 'SCMP_CMP_EQ' }), 'InvalidArgument', 'linux.seccomp.syscalls[3].args[1].value: -1 is outside the unsigned 64-bit range');
  fails(arg({ index: 1, value: '5', op: 'SCMP_CMP_EQ' }), 'InvalidArgument', 'linux.seccomp.syscalls[3].args[1].value: must be an unsigned 64-bit integer, got "5"');
  fails(arg({ index: 1, value: 0, valueTwo: 0.5, op: 'SCMP_CMP_MASKED_EQ' }), 'InvalidArgument', 'linux.seccomp.syscalls[3].args[1].valueTwo: must be an unsigned 64-bit integer, got 0.5');
  fails(arg({ index: 1, value: 2 ** 65, op: 'SCMP_CMP_EQ' }), 'InvalidArgument', `linux.seccomp.syscalls[3].args[1].value: ${2n ** 65n} is outside the unsigned 64-bit range`);
  assert.throws(() => compileSeccomp({ defaultAction: 'X' }, 'spec.seccomp'), /^BerthError: spec\.seccomp\.defaultAction:/);
});

test('errors carry a hint listing the valid values', () => {
  try {
    compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_FOO' }] });
    assert.fail('no error');
  } catch (err) {
    assert.ok(isBerthError(err));
    assert.match(err.hint ?? '', /SCMP_ACT_ERRNO/);
  }
});

test('SCMP_ACT_NOTIFY: listenerPath required, then not supported yet', () => {
  const notify = { names: ['mount'], action: 'SCMP_ACT_NOTIFY' };
  fails({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [notify] }, 'InvalidArgument', 'linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath');
  fails({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock', syscalls: [notify] }, 'FailedPrecondition', 'linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY is not supported by berth yet');
});

test('the default profile compiles: deny by default, allow-list, clone/clone3/personality rules', () => {
  const profile = defaultSeccompProfile({ arch: 'x64' });
  assert.equal(profile.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(profile.defaultErrnoRet, 1);
  assert.deepEqual(profile.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  const ops = compileSeccomp(profile);
  assert.equal(ops[0]!.op, Op.SECCOMP_INIT);
  assert.equal(ops.at(-1)!.op, Op.SECCOMP_LOAD);
  const byName = new Map<string, PlanOp[]>();
  for (const r of rules(ops)) byName.set(r.args[0] as string, [...(byName.get(r.args[0] as string) ?? []), r]);
  for (const name of ['read', 'write', 'openat', 'execve', 'exit_group', 'mmap', 'futex', 'rt_sigreturn', 'arch_prctl', 'wait4', 'chroot', 'capset']) {
    assert.deepEqual(byName.get(name)?.map((r) => r.args.slice(1)), [[0x7fff0000, 0, 0]], name);
  }
  for (const name of ['mount', 'umount2', 'unshare', 'setns', 'reboot', 'kexec_load', 'init_module', 'bpf', 'keyctl', 'add_key', 'open_by_handle_at']) {
    assert.equal(byName.get(name), undefined, `${name} must not be allowed`);
  }
  assert.deepEqual(byName.get('clone')!.map((r) => r.args.slice(1)), [[0x7fff0000, 0, 1, 0, 7, 0x7e020000, 0]]);
  assert.deepEqual(byName.get('clone3')!.map((r) => r.args.slice(1)), [[0x00050026, 38, 0]]);
  assert.deepEqual(byName.get('personality')!.map((r) => r.args.slice(5, 7)), [[4, 0], [4, 8], [4, 0x20000], [4, 0x20008], [4, 0xffffffff]]);
  assert.deepEqual(byName.get('socket')!.map((r) => r.args.slice(3)), [[1, 0, 1, 40, 0]]);
});

test('the default profile follows the container\'s capabilities', () => {
  const admin = compileSeccomp(defaultSeccompProfile({ arch: 'x64', capabilities: ['CAP_SYS_ADMIN', 'CAP_SYS_PTRACE'] }));
  const names = new Map(rules(admin).map((r) => [r.args[0] as string, r.args]));
  for (const name of ['mount', 'unshare', 'setns', 'clone3', 'kcmp']) assert.deepEqual(names.get(name)?.slice(1), [0x7fff0000, 0, 0], name);
  assert.deepEqual(names.get('clone')?.slice(1), [0x7fff0000, 0, 0]);
  assert.equal(names.get('chroot'), undefined);
  const arm = defaultSeccompProfile({ arch: 'arm64', capabilities: [] });
  assert.deepEqual(arm.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  assert.ok(arm.syscalls!.some((s) => s.names.includes('set_tls')));
  assert.ok(!arm.syscalls!.some((s) => s.names.includes('arch_prctl')));
  assert.equal(defaultSeccompProfile({ arch: 'mystery' }).architectures, undefined);
});
