// Signal names and numbers as `kill` accepts them: "TERM", "SIGTERM", "15", "sigkill".
import { constants } from 'node:os';
import { BerthError } from '../../errors.js';

export function parseSignal(value: string | undefined): number {
  const text = (value ?? 'SIGTERM').trim();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n >= 1 && n <= 64) return n;
    throw new BerthError('InvalidArgument', `invalid signal "${text}": numbers go from 1 to 64`);
  }
  const upper = text.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  const rt = /^SIGRTMIN(\+(\d+))?$/.exec(name) ?? /^SIGRTMAX(-(\d+))?$/.exec(name);
  if (rt) {
    const off = Number(rt[2] ?? 0);
    const n = name.startsWith('SIGRTMIN') ? 34 + off : 64 - off;
    if (n >= 34 && n <= 64) return n;
  }
  const n = (constants.signals as Record<string, number>)[name];
  if (n === undefined) throw new BerthError('InvalidArgument', `invalid signal "${text}"`, { hint: 'use a name such as TERM or KILL, or a number' });
  return n;
}
