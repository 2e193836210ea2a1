// Flag parsing with the rules of the docker CLI (cobra/pflag): `--name v`, `--name=v`,
// `-n v`, `-nv`, combined short booleans (`-dit`), `--` ends flags. Commands that take a
// command line of their own (run, create, exec) stop at the first positional argument so
// `berth run img sh -c 'x'` keeps `-c` for the container.

export type FlagKind = 'bool' | 'string' | 'list' | 'int';

export interface FlagSpec {
  long: string;
  short?: string;
  kind: FlagKind;
  /** One line for --help. */
  help: string;
  /** The value's placeholder in --help (docker prints the type: string, list, int, bytes …). */
  arg?: string;
}

export interface CommandSpec {
  /** `run`, `volume ls` … as shown in usage lines. */
  name: string;
  usage: string;
  summary: string;
  flags: FlagSpec[];
  /** Stop parsing flags at the first positional argument. */
  stopAtPositional?: boolean;
  minArgs?: number;
  maxArgs?: number;
}

export type FlagValue = string | boolean | string[] | number;

export interface ParsedArgs {
  flags: Map<string, FlagValue>;
  args: string[];
}

/** A mistake on the command line: docker prints it with the usage line and exits 125 (or 1 for argument counts). */
export class UsageError extends Error {
  readonly command: string;
  readonly exitCode: number;
  constructor(command: string, message: string, exitCode = 125) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
    this.exitCode = exitCode;
  }
}

const HELP_FLAG: FlagSpec = { long: 'help', kind: 'bool', help: 'Print usage' };

export function parseCommandLine(spec: CommandSpec, argv: string[]): ParsedArgs {
  const specs = [...spec.flags, HELP_FLAG];
  const byLong = new Map(specs.map((s) => [s.long, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short as string, s]));
  const flags = new Map<string, FlagValue>();
  const args: string[] = [];
  const fail = (msg: string): never => {
    throw new UsageError(spec.name, msg);
  };
  const set = (s: FlagSpec, raw: string | undefined, shown: string): void => {
    if (s.kind === 'bool') {
      const v = raw ?? 'true';
      if (!['true', 'false', '1', '0', 't', 'f', 'TRUE', 'FALSE', 'True', 'False'].includes(v))
        fail(`invalid argument "${v}" for "${shown}" flag: strconv.ParseBool: parsing "${v}": invalid syntax`);
      flags.set(s.long, ['true', '1', 't', 'TRUE', 'True'].includes(v));
      return;
    }
    const v = raw as string;
    if (s.kind === 'int') {
      if (!/^[+-]?\d+$/.test(v)) fail(`invalid argument "${v}" for "${shown}" flag: strconv.ParseInt: parsing "${v}": invalid syntax`);
      flags.set(s.long, Number(v));
    } else if (s.kind === 'list') {
      const prev = flags.get(s.long);
      flags.set(s.long, [...(Array.isArray(prev) ? prev : []), v]);
    } else flags.set(s.long, v);
  };
  const shownName = (s: FlagSpec): string => (s.short ? `-${s.short}, --${s.long}` : `--${s.long}`);

  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const s = byLong.get(name);
      if (!s) fail(`unknown flag: --${name}`);
      const fs = s as FlagSpec;
      if (fs.kind === 'bool') set(fs, eq < 0 ? undefined : a.slice(eq + 1), shownName(fs));
      else if (eq >= 0) set(fs, a.slice(eq + 1), shownName(fs));
      else {
        if (i + 1 >= argv.length) fail(`flag needs an argument: --${name}`);
        set(fs, argv[++i], shownName(fs));
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j];
        const s = byShort.get(c);
        if (!s) fail(`unknown shorthand flag: '${c}' in ${a}`);
        const fs = s as FlagSpec;
        if (fs.kind === 'bool') {
          if (a[j + 1] === '=') {
            set(fs, a.slice(j + 2), shownName(fs));
            break;
          }
          set(fs, undefined, shownName(fs));
          continue;
        }
        let rest = a.slice(j + 1);
        if (rest.startsWith('=')) rest = rest.slice(1);
        if (rest !== '' || a[j + 1] === '=') set(fs, rest, shownName(fs));
        else {
          if (i + 1 >= argv.length) fail(`flag needs an argument: '${c}' in -${c}`);
          set(fs, argv[++i], shownName(fs));
        }
        break;
      }
      continue;
    }
    if (spec.stopAtPositional) {
      args.push(...argv.slice(i));
      break;
    }
    args.push(a);
  }
  if (flags.get('help') === true) return { flags, args };
  if (spec.minArgs !== undefined && args.length < spec.minArgs) {
    const what = spec.minArgs === 1 ? '1 argument' : `${spec.minArgs} arguments`;
    throw new UsageError(spec.name, spec.maxArgs === spec.minArgs ? `'berth ${spec.name}' requires exactly ${what}` : `'berth ${spec.name}' requires at least ${what}`, 1);
  }
  if (spec.maxArgs !== undefined && args.length > spec.maxArgs) {
    const what = spec.maxArgs === 0 ? 'accepts no arguments' : spec.maxArgs === spec.minArgs ? `requires exactly ${spec.maxArgs} argument${spec.maxArgs === 1 ? '' : 's'}` : `requires at most ${spec.maxArgs} argument${spec.maxArgs === 1 ? '' : 's'}`;
    throw new UsageError(spec.name, `'berth ${spec.name}' ${what}`, 1);
  }
  return { flags, args };
}

export function helpText(spec: CommandSpec): string {
  const specs = [...spec.flags, HELP_FLAG];
  const rows = specs.map((s) => {
    const left = `${s.short ? `-${s.short}, ` : '    '}--${s.long}${s.kind === 'bool' ? '' : ` ${s.arg ?? s.kind}`}`;
    return [left, s.help] as const;
  });
  const w = Math.max(...rows.map((r) => r[0].length));
  const lines = [`Usage:  berth ${spec.name}${spec.usage ? ` ${spec.usage}` : ''}`, '', spec.summary];
  if (spec.flags.length) lines.push('', 'Options:', ...rows.map(([l, h]) => `  ${l.padEnd(w)}   ${h}`));
  return lines.join('\n') + '\n';
}

/** Typed accessors: a flag's value, or undefined when it was not given. */
export class Flags {
  constructor(private readonly parsed: ParsedArgs) {}
  has(name: string): boolean {
    return this.parsed.flags.has(name);
  }
  bool(name: string, dflt = false): boolean {
    const v = this.parsed.flags.get(name);
    return typeof v === 'boolean' ? v : dflt;
  }
  str(name: string): string | undefined {
    const v = this.parsed.flags.get(name);
    return typeof v === 'string' ? v : undefined;
  }
  int(name: string): number | undefined {
    const v = this.parsed.flags.get(name);
    return typeof v === 'number' ? v : undefined;
  }
  list(name: string): string[] {
    const v = this.parsed.flags.get(name);
    return Array.isArray(v) ? v : [];
  }
}
