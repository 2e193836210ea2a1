import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MountFlag, Msg, Op, PLAN_VERSION, decodePlan, encodePlan, formatPlan, frameMessage, type Plan } from './plan.js';
import { FrameReader, decodeErrorPayload, exitCodeOf } from '../runtime/exec-channel.js';

const header = readFileSync(fileURLToPath(new URL('../../../native/plan.h', import.meta.url)), 'utf8');

function enumValues(prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of header.matchAll(new RegExp(`\\b${prefix}([A-Z0-9_]+)\\s*=\\s*(\\d+)`, 'g'))) out.set(m[1], Number(m[2]));
  return out;
}

test('every op number in plan.ts matches native/plan.h, and the other way round', () => {
  const h = enumValues('OP_');
  assert.deepEqual(new Map(Object.entries(Op)), h);
});

test('message numbers and mount flags match native/plan.h', () => {
  assert.deepEqual(new Map(Object.entries(Msg)), enumValues('MSG_'));
  for (const [name, value] of Object.entries(MountFlag)) {
    const m = new RegExp(`#define BERTH_MNT_${name}\\s+(0x[0-9a-f]+)`).exec(header);
    assert.ok(m, `BERTH_MNT_${name} in plan.h`);
    assert.equal(Number(m[1]), value, name);
  }
  assert.match(header, new RegExp(`#define BERTH_PLAN_VERSION ${PLAN_VERSION}\\b`));
});

test('plans survive the wire format: ints, bigints, strings with NUL terminators, bytes', () => {
  const plan: Plan = [
    { op: Op.MOUNT, args: ['proc', '/proc', 'proc', 0x6, '', 3] },
    { op: Op.CAPS, args: [(1n << 40n) | 1n, 0n, -1, 0, 0] },
    { op: Op.EXEC, args: ['/', 2, 'sh', 'héllo', 'PATH=/bin'] },
  ];
  const buf = encodePlan(plan);
  assert.equal(buf.toString('latin1', 0, 4), 'BRTP');
  const back = decodePlan(buf);
  assert.deepEqual(back[0].args, ['proc', '/proc', 'proc', 6, '', 3]);
  assert.deepEqual(back[1].args, [2 ** 40 + 1, 0, -1, 0, 0], "safe integers come back as numbers");
  assert.deepEqual(decodePlan(encodePlan([{ op: Op.CAPS, args: [1n << 62n] }]))[0].args, [1n << 62n]);
  assert.deepEqual(back[2].args, ['/', 2, 'sh', 'héllo', 'PATH=/bin']);
  assert.match(formatPlan(back), /MOUNT "proc" "\/proc"/);
});

test('64-bit integers keep their two\'s complement on the wire, whatever their size', () => {
  const values = [0, 1, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 32, -(2 ** 32), 2 ** 53 - 1, -(2 ** 53) + 1, 0x7fff0000, -0x50000];
  const buf = encodePlan([{ op: Op.CAPS, args: values }]);
  values.forEach((v, i) => assert.equal(buf.readBigInt64LE(8 + 4 + i * 9 + 1), BigInt(v), String(v)));
  assert.deepEqual(decodePlan(buf)[0].args, values);
  assert.deepEqual(decodePlan(encodePlan([{ op: Op.CAPS, args: [-(1n << 63n), (1n << 64n) - 1n] }]))[0].args, [-(1n << 63n), -1]);
  const bytes = decodePlan(encodePlan([{ op: Op.DEVICE_BPF, args: ['/x', new Uint8Array([0, 1, 2]), 'x', 'x'] }]))[0].args;
  assert.deepEqual(bytes, ['/x', '\u0000\u0001\u0002', 'x', 'x']);
});

test('channel frames split and joined at any byte boundary', () => {
  const a = frameMessage(Msg.PID, Buffer.from([1, 0, 0, 0]));
  const b = frameMessage(Msg.CHILD_DONE);
  const all = Buffer.concat([a, b]);
  const r = new FrameReader();
  const got = [...r.push(all.subarray(0, 5)), ...r.push(all.subarray(5, 13)), ...r.push(all.subarray(13))];
  assert.deepEqual(got.map((f) => f.type), [Msg.PID, Msg.CHILD_DONE]);
  assert.equal(got[0].payload.readInt32LE(0), 1);
  const err = Buffer.concat([Buffer.from([7, 0, 0, 0, 2, 0, 0, 0]), Buffer.from('mount failed')]);
  assert.deepEqual(decodeErrorPayload(err), { index: 7, errno: 2, message: 'mount failed' });
});

test('wait statuses become shell exit codes', () => {
  assert.equal(exitCodeOf(3 << 8), 3);
  assert.equal(exitCodeOf(9), 137);
  assert.equal(exitCodeOf(15), 143);
});
