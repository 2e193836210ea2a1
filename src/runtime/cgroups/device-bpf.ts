// Compiles the OCI device rule list (linux.resources.devices) into an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE for cgroup v2, which has no devices.allow/deny files.
//
// Semantics are those of the v1 devices controller after `devices.deny a` and then each rule
// written in order: for every access bit (mknod, read, write) the LAST rule that covers the
// device and that bit decides; a request is allowed only when every bit it asks for is
// allowed; nothing matching means denied. Evaluating per bit (instead of "the requested set
// is a subset of one rule's set") keeps `allow r` + `allow w` equal to `allow rw`, as on v1.
//
// The program reads struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// where access_type = (access << 16) | type.

import { BerthError } from '../../errors.js';
import type { DeviceCgroup } from '../spec.js';

export const BPF_DEVCG_DEV_BLOCK = 1;
export const BPF_DEVCG_DEV_CHAR = 2;
export const BPF_DEVCG_ACC_MKNOD = 1;
export const BPF_DEVCG_ACC_READ = 2;
export const BPF_DEVCG_ACC_WRITE = 4;

/** The eBPF opcodes this generator emits (a test interpreter implements exactly these). */
export const BpfOp = {
  LDX_MEM_W: 0x61, // dst = *(u32 *)(src + off)
  ALU64_AND_K: 0x57,
  ALU64_RSH_K: 0x77,
  ALU64_MOV_K: 0xb7,
  ALU64_MOV_X: 0xbf,
  JMP_JA: 0x05,
  JMP_JEQ_K: 0x15,
  JMP_JNE_K: 0x55,
  JMP_EXIT: 0x95,
} as const;

export const BPF_INSN_SIZE = 8;

// Registers: r1 ctx; r2 type; r3 access; r4 major; r5 minor; r6 scratch; r0 result.
const R0 = 0;
const R1 = 1;
const R_TYPE = 2;
const R_ACCESS = 3;
const R_MAJOR = 4;
const R_MINOR = 5;
const R_TMP = 6;

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

/** A rule normalised: undefined type/major/minor mean "any". */
interface Rule {
  allow: boolean;
  type?: number;
  major?: number;
  minor?: number;
  access: number;
}

const MAX_DEVICE_NUMBER = 0x7fffffff; // jump immediates are signed 32-bit

function normalise(rule: DeviceCgroup, field: string): Rule {
  if (typeof rule.allow !== 'boolean') {
    throw new BerthError('InvalidArgument', `${field}.allow: must be true or false`);
  }
  let type: number | undefined;
  switch (rule.type ?? 'a') {
    case 'a':
      type = undefined;
      break;
    case 'c':
      type = BPF_DEVCG_DEV_CHAR;
      break;
    case 'b':
      type = BPF_DEVCG_DEV_BLOCK;
      break;
    default:
      throw new BerthError('InvalidArgument', `${field}.type: "${rule.type}" is not a device type`, {
        hint: 'use "a", "c" or "b"',
      });
  }
  const num = (v: number | null | undefined, name: string): number | undefined => {
    if (v === undefined || v === null || v === -1) return undefined;
    if (!Number.isInteger(v) || v < 0 || v > MAX_DEVICE_NUMBER) {
      throw new BerthError('InvalidArgument', `${field}.${name}: ${v} is not a device number`);
    }
    return v;
  };
  let access = 0;
  for (const ch of rule.access ?? 'rwm') {
    if (ch === 'r') access |= BPF_DEVCG_ACC_READ;
    else if (ch === 'w') access |= BPF_DEVCG_ACC_WRITE;
    else if (ch === 'm') access |= BPF_DEVCG_ACC_MKNOD;
    else {
      throw new BerthError('InvalidArgument', `${field}.access: "${rule.access}" may only hold r, w and m`);
    }
  }
  // Type "a" covers every device whatever major/minor say, as on v1.
  if (type === undefined) return { allow: rule.allow, access };
  return { allow: rule.allow, type, major: num(rule.major, 'major'), minor: num(rule.minor, 'minor'), access };
}

function matchesEverything(r: Rule): boolean {
  return r.type === undefined && r.major === undefined && r.minor === undefined;
}

/** Validates the rules (errors name `field`) and returns the program as raw struct bpf_insn bytes. */
export function compileDeviceProgram(rules: readonly DeviceCgroup[], field = 'linux.resources.devices'): Uint8Array {
  const normalised = rules.map((r, i) => normalise(r, `${field}[${i}]`));
  const insns: Insn[] = [];
  const emit = (code: number, dst: number, src: number, off: number, imm: number): number =>
    insns.push({ code, dst, src, off, imm }) - 1;

  emit(BpfOp.LDX_MEM_W, R_TYPE, R1, 0, 0);
  emit(BpfOp.ALU64_MOV_X, R_ACCESS, R_TYPE, 0, 0);
  emit(BpfOp.ALU64_AND_K, R_TYPE, 0, 0, 0xffff);
  emit(BpfOp.ALU64_RSH_K, R_ACCESS, 0, 0, 16);
  emit(BpfOp.LDX_MEM_W, R_MAJOR, R1, 4, 0);
  emit(BpfOp.LDX_MEM_W, R_MINOR, R1, 8, 0);

  for (const bit of [BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE]) {
    // Jumps to the end of this bit's section; patched once the section's length is known.
    const toSectionEnd: number[] = [];
    emit(BpfOp.ALU64_MOV_X, R_TMP, R_ACCESS, 0, 0);
    emit(BpfOp.ALU64_AND_K, R_TMP, 0, 0, bit);
    toSectionEnd.push(emit(BpfOp.JMP_JEQ_K, R_TMP, 0, 0, 0));
    let covered = false;
    for (let i = normalised.length - 1; i >= 0; i--) {
      const rule = normalised[i];
      if ((rule.access & bit) === 0) continue;
      const toNextRule: number[] = [];
      if (rule.type !== undefined) toNextRule.push(emit(BpfOp.JMP_JNE_K, R_TYPE, 0, 0, rule.type));
      if (rule.major !== undefined) toNextRule.push(emit(BpfOp.JMP_JNE_K, R_MAJOR, 0, 0, rule.major));
      if (rule.minor !== undefined) toNextRule.push(emit(BpfOp.JMP_JNE_K, R_MINOR, 0, 0, rule.minor));
      if (rule.allow) {
        toSectionEnd.push(emit(BpfOp.JMP_JA, 0, 0, 0, 0));
      } else {
        emit(BpfOp.ALU64_MOV_K, R0, 0, 0, 0);
        emit(BpfOp.JMP_EXIT, 0, 0, 0, 0);
      }
      const next = insns.length;
      for (const j of toNextRule) insns[j].off = next - j - 1;
      // Earlier rules can never decide this bit once a rule covers every device.
      // (The verifier also rejects the unreachable code they would become.)
      if (matchesEverything(rule)) {
        covered = true;
        break;
      }
    }
    if (!covered) {
      emit(BpfOp.ALU64_MOV_K, R0, 0, 0, 0);
      emit(BpfOp.JMP_EXIT, 0, 0, 0, 0);
    }
    const end = insns.length;
    for (const j of toSectionEnd) insns[j].off = end - j - 1;
  }
  emit(BpfOp.ALU64_MOV_K, R0, 0, 0, 1);
  emit(BpfOp.JMP_EXIT, 0, 0, 0, 0);

  const out = new Uint8Array(insns.length * BPF_INSN_SIZE);
  const view = new DataView(out.buffer);
  insns.forEach((insn, i) => {
    const at = i * BPF_INSN_SIZE;
    if (insn.off > 0x7fff) throw new BerthError('InvalidArgument', `${field}: too many rules for one device program`);
    view.setUint8(at, insn.code);
    view.setUint8(at + 1, (insn.dst & 0xf) | ((insn.src & 0xf) << 4));
    view.setInt16(at + 2, insn.off, true);
    view.setInt32(at + 4, insn.imm, true);
  });
  return out;
}
