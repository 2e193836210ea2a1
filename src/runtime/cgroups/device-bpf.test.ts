import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBerthError } from '../../errors.js';
import type { DeviceCgroup } from '../spec.js';
import {
  BPF_DEVCG_ACC_MKNOD as M,
  BPF_DEVCG_ACC_READ as R,
  BPF_DEVCG_ACC_WRITE as W,
  BPF_DEVCG_DEV_BLOCK as BLOCK,
  BPF_DEVCG_DEV_CHAR as CHAR,
  BPF_INSN_SIZE,
  BpfOp,
  compileDeviceProgram,
} from './device-bpf.js';

/** Runs a program over struct bpf_cgroup_dev_ctx with only the opcodes the generator may use. */
function run(prog: Uint8Array, type: number, access: number, major: number, minor: number): number {
  const view = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const ctx = new DataView(new ArrayBuffer(12));
  ctx.setUint32(0, (access << 16) | type, true);
  ctx.setUint32(4, major, true);
  ctx.setUint32(8, minor, true);
  const reg = new Array<bigint>(11).fill(0n);
  const CTX = 1n << 40n; // r1 is a pointer; any distinct value works
  reg[1] = CTX;
  const n = prog.length / BPF_INSN_SIZE;
  const mask = (1n << 64n) - 1n;
  for (let pc = 0, steps = 0; ; pc++, steps++) {
    assert.ok(pc >= 0 && pc < n, `pc ${pc} out of program`);
    assert.ok(steps < 10000, 'program loops');
    const at = pc * BPF_INSN_SIZE;
    const code = view.getUint8(at);
    const dst = view.getUint8(at + 1) & 0xf;
    const src = view.getUint8(at + 1) >> 4;
    const off = view.getInt16(at + 2, true);
    const imm = BigInt(view.getInt32(at + 4, true)) & mask;
    switch (code) {
      case BpfOp.LDX_MEM_W: {
        assert.equal(reg[src], CTX, 'loads only from ctx');
        assert.ok(off >= 0 && off <= 8 && off % 4 === 0);
        reg[dst] = BigInt(ctx.getUint32(off, true));
        break;
      }
      case BpfOp.ALU64_AND_K: reg[dst] &= imm; break;
      case BpfOp.ALU64_RSH_K: reg[dst] >>= imm; break;
      case BpfOp.ALU64_MOV_K: reg[dst] = imm; break;
      case BpfOp.ALU64_MOV_X: reg[dst] = reg[src]; break;
      case BpfOp.JMP_JA: pc += off; break;
      case BpfOp.JMP_JEQ_K: if (reg[dst] === imm) pc += off; break;
      case BpfOp.JMP_JNE_K: if (reg[dst] !== imm) pc += off; break;
      case BpfOp.JMP_EXIT: return Number(reg[0]);
      default: assert.fail(`unexpected opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
}

/** Every instruction is reachable (the kernel verifier rejects dead code). */
function assertAllReachable(prog: Uint8Array): void {
  const view = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const n = prog.length / BPF_INSN_SIZE;
  const seen = new Set<number>();
  const todo = [0];
  while (todo.length) {
    const pc = todo.pop()!;
    if (seen.has(pc)) continue;
    seen.add(pc);
    const code = view.getUint8(pc * 8);
    const off = view.getInt16(pc * 8 + 2, true);
    if (code === BpfOp.JMP_EXIT) continue;
    if (code === BpfOp.JMP_JA) todo.push(pc + 1 + off);
    else if (code === BpfOp.JMP_JEQ_K || code === BpfOp.JMP_JNE_K) todo.push(pc + 1, pc + 1 + off);
    else todo.push(pc + 1);
  }
  assert.equal(seen.size, n, 'unreachable instructions');
}

const docker: DeviceCgroup[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // /dev/null
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // /dev/zero
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // pts
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rw' }, // tun
];

test('a deny-all base with an allow list', () => {
  const p = compileDeviceProgram(docker);
  assertAllReachable(p);
  assert.equal(run(p, CHAR, R | W, 1, 3), 1);
  assert.equal(run(p, CHAR, M, 1, 5), 1);
  assert.equal(run(p, CHAR, R, 136, 7), 1);
  assert.equal(run(p, CHAR, R | W, 10, 200), 1);
  assert.equal(run(p, CHAR, M, 10, 200), 0, 'tun has no mknod');
  assert.equal(run(p, CHAR, R, 1, 4), 0);
  assert.equal(run(p, BLOCK, R, 1, 3), 0, 'block 1:3 is another device');
  assert.equal(run(p, BLOCK, R, 8, 0), 0);
});

test('the last matching rule wins, per access bit', () => {
  const p = compileDeviceProgram([
    { allow: true, access: 'rwm' },
    { allow: false, type: 'c', major: 1, minor: 3, access: 'r' },
  ]);
  assertAllReachable(p);
  assert.equal(run(p, CHAR, R, 1, 3), 0);
  assert.equal(run(p, CHAR, W, 1, 3), 1);
  assert.equal(run(p, CHAR, R | W, 1, 3), 0, 'a request holding a denied bit is denied');
  assert.equal(run(p, CHAR, R, 1, 5), 1);
  assert.equal(run(p, BLOCK, R, 1, 3), 1);
});

test('separate allow rules add up as on v1', () => {
  const p = compileDeviceProgram([
    { allow: false },
    { allow: true, type: 'c', major: 5, minor: 1, access: 'r' },
    { allow: true, type: 'c', major: 5, minor: 1, access: 'w' },
  ]);
  assert.equal(run(p, CHAR, R | W, 5, 1), 1);
  assert.equal(run(p, CHAR, R | W | M, 5, 1), 0);
});

test('wildcards: type a, missing major/minor and -1', () => {
  const p = compileDeviceProgram([
    { allow: false },
    { allow: true, type: 'b', major: 8, minor: -1, access: 'r' },
    { allow: true, type: 'c', major: null, minor: 9, access: 'm' },
  ]);
  assertAllReachable(p);
  assert.equal(run(p, BLOCK, R, 8, 17), 1);
  assert.equal(run(p, BLOCK, W, 8, 17), 0);
  assert.equal(run(p, CHAR, M, 77, 9), 1);
  assert.equal(run(p, CHAR, M, 77, 8), 0);
});

test('no rules deny everything; a trailing allow-all allows everything', () => {
  const none = compileDeviceProgram([]);
  assert.equal(run(none, CHAR, R, 1, 3), 0);
  const all = compileDeviceProgram([{ allow: false }, { allow: true, type: 'c', major: 1, minor: 3 }, { allow: true }]);
  assertAllReachable(all);
  assert.equal(run(all, BLOCK, R | W | M, 8, 0), 1);
});

test('an access of "" matches no request', () => {
  const p = compileDeviceProgram([{ allow: true }, { allow: false, type: 'c', major: 1, minor: 3, access: '' }]);
  assert.equal(run(p, CHAR, R, 1, 3), 1);
});

test('invalid rules name the field', () => {
  const bad: [DeviceCgroup, RegExp][] = [
    [{ allow: true, type: 'x' }, /devices\[1\]\.type/],
    [{ allow: true, type: 'c', access: 'rwx' }, /devices\[1\]\.access/],
    [{ allow: true, type: 'c', major: 1.5 }, /devices\[1\]\.major/],
  ];
  for (const [rule, re] of bad) {
    assert.throws(() => compileDeviceProgram([{ allow: false }, rule]), (err) => isBerthError(err, 'InvalidArgument') && re.test(err.message));
  }
});

test('instructions are 8 bytes, little endian', () => {
  const p = compileDeviceProgram([]);
  assert.equal(p.length % 8, 0);
  // first: r2 = *(u32 *)(r1 + 0)
  assert.deepEqual([...p.subarray(0, 8)], [0x61, 0x12, 0, 0, 0, 0, 0, 0]);
  // last: exit
  assert.equal(p[p.length - 8], 0x95);
});
