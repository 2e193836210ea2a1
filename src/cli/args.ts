// A small flag parser with runc's (urfave/cli) rules: flags come before positional
// arguments, "-x" and "--x" are the same, values go as "--x v" or "--x=v", and the first
// positional argument ends flag parsing (so `exec ID sh -c ...` keeps its own flags).
import { BerthError } from '../errors.js';

export interface FlagSpec {
  name: string;
  aliases?: string[];
  kind: 'bool' | 'string' | 'multi';
  help?: string;
}

export interface Parsed {
  flags: Record<string, string | boolean | string[] | undefined>;
  args: string[];
}

export function parseFlags(argv: string[], specs: FlagSpec[], where: string): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) for (const n of [s.name, ...(s.aliases ?? [])]) byName.set(n, s);
  const flags: Parsed['flags'] = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const spec = byName.get(name);
    if (!spec) throw new BerthError('InvalidArgument', `${where}: flag provided but not defined: -${name}`, { hint: `see berth-oci ${where.split(' ').pop()} --help` });
    if (spec.kind === 'bool') {
      const v = eq < 0 ? 'true' : body.slice(eq + 1);
      if (v !== 'true' && v !== 'false') throw new BerthError('InvalidArgument', `${where}: invalid boolean value "${v}" for -${name}`);
      flags[spec.name] = v === 'true';
      continue;
    }
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new BerthError('InvalidArgument', `${where}: flag needs an argument: -${name}`);
      value = argv[++i];
    }
    if (spec.kind === 'multi') ((flags[spec.name] ??= []) as string[]).push(value);
    else flags[spec.name] = value;
  }
  return { flags, args: argv.slice(i) };
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function bool(p: Parsed, name: string): boolean {
  return p.flags[name] === true;
}

export function multi(p: Parsed, name: string): string[] {
  const v = p.flags[name];
  return Array.isArray(v) ? v : [];
}

export function int(p: Parsed, name: string, where: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new BerthError('InvalidArgument', `${where}: invalid value "${v}" for -${name}: expected an integer`);
  return Number(v);
}

/** Sizes as runc takes them: "1024", "100k", "64m", "1g" (binary multiples). */
export function size(p: Parsed, name: string, where: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (v === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new BerthError('InvalidArgument', `${where}: invalid size "${v}" for -${name}`, { hint: 'use bytes or a suffix: 512k, 64m, 1g' });
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 }[m[2].toLowerCase() as '' | 'k'];
  return Math.round(Number(m[1]) * mult);
}

/** Exactly n positional arguments, naming what is missing. */
export function positional(p: Parsed, names: string[], where: string, extraOk = false): string[] {
  if (p.args.length < names.length)
    throw new BerthError('InvalidArgument', `${where}: missing ${names.slice(p.args.length).join(' and ')}`, { hint: `usage: berth-oci ${where} ${names.map((n) => `<${n}>`).join(' ')}` });
  if (!extraOk && p.args.length > names.length)
    throw new BerthError('InvalidArgument', `${where}: unexpected argument "${p.args[names.length]}"`, { hint: `usage: berth-oci ${where} ${names.map((n) => `<${n}>`).join(' ')}` });
  return p.args;
}
