// The part of Go's text/template that `--format` needs: `{{.A.B}}`, `{{json .Config}}`,
// functions with arguments (`{{index .Labels "k"}}`, `{{join .Args " "}}`), pipes
// (`{{.Name | upper}}`), methods of a row (`{{.Label "com.example"}}`) and `{{- -}}` trimming.
// `range`/`if` are refused by name rather than printed wrong.

type Operand = { kind: 'field'; path: string[] } | { kind: 'literal'; value: unknown } | { kind: 'ident'; name: string };
type Command = Operand[];
type Node = { kind: 'text'; text: string } | { kind: 'action'; pipeline: Command[] };

export interface Template {
  nodes: Node[];
}

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const UNSUPPORTED = new Set(['range', 'if', 'else', 'end', 'with', 'define', 'template', 'block']);

export function parseTemplate(src: string): Template {
  const nodes: Node[] = [];
  let pos = 0;
  while (pos < src.length) {
    const open = src.indexOf('{{', pos);
    if (open < 0) {
      nodes.push({ kind: 'text', text: src.slice(pos) });
      break;
    }
    let text = src.slice(pos, open);
    let start = open + 2;
    if (src.startsWith('- ', start)) {
      text = text.replace(/\s+$/, '');
      start += 2;
    }
    if (text) nodes.push({ kind: 'text', text });
    const close = findClose(src, start);
    if (close < 0) throw new TemplateError(`template: unclosed action in "${src}"`);
    let body = src.slice(start, close);
    let next = close + 2;
    if (body.endsWith(' -')) {
      body = body.slice(0, -2);
      while (next < src.length && /\s/.test(src[next])) next++;
    }
    nodes.push({ kind: 'action', pipeline: parsePipeline(body.trim(), src) });
    pos = next;
  }
  return { nodes };
}

function findClose(src: string, from: number): number {
  let inStr = false;
  for (let i = from; i < src.length - 1; i++) {
    const c = src[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === '}' && src[i + 1] === '}') return i;
  }
  return -1;
}

function tokenize(body: string, src: string): string[] {
  const tokens: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+)/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < body.length && (m = re.exec(body))) tokens.push(m[1]);
  if (body.slice(re.lastIndex).trim()) throw new TemplateError(`template: cannot parse "${src}"`);
  return tokens;
}

function parsePipeline(body: string, src: string): Command[] {
  if (!body) throw new TemplateError(`template: missing value in "${src}"`);
  const cmds: Command[] = [[]];
  for (const t of tokenize(body, src)) {
    if (t === '|') {
      cmds.push([]);
      continue;
    }
    cmds[cmds.length - 1].push(parseOperand(t, src));
  }
  if (cmds.some((c) => c.length === 0)) throw new TemplateError(`template: missing command in "${src}"`);
  return cmds;
}

function parseOperand(t: string, src: string): Operand {
  if (t === '.') return { kind: 'field', path: [] };
  if (t.startsWith('.')) return { kind: 'field', path: t.slice(1).split('.') };
  if (t.startsWith('"')) return { kind: 'literal', value: JSON.parse(t) };
  if (t.startsWith('`')) return { kind: 'literal', value: t.slice(1, -1) };
  if (/^-?\d+(\.\d+)?$/.test(t)) return { kind: 'literal', value: Number(t) };
  if (t === 'true' || t === 'false') return { kind: 'literal', value: t === 'true' };
  if (UNSUPPORTED.has(t)) throw new TemplateError(`template: "${t}" is not supported by berth's --format (only fields, pipes and functions); use --format json and a JSON tool instead`);
  if (!(t in FUNCS)) throw new TemplateError(`template: function "${t}" not defined in "${src}"`);
  return { kind: 'ident', name: t };
}

/** Go's %v of a value decoded from JSON. */
export function goString(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (typeof v === 'object')
    return `map[${Object.keys(v as object)
      .sort()
      .map((k) => `${k}:${goString((v as Record<string, unknown>)[k])}`)
      .join(' ')}]`;
  return String(v);
}

const FUNCS: Record<string, (...a: unknown[]) => unknown> = {
  json: (v) => JSON.stringify(v === undefined ? null : v),
  upper: (v) => goString(v).toUpperCase(),
  lower: (v) => goString(v).toLowerCase(),
  title: (v) => goString(v).replace(/\b\w/g, (c) => c.toUpperCase()),
  join: (v, sep) => (Array.isArray(v) ? v.map(goString).join(goString(sep)) : goString(v)),
  split: (v, sep) => goString(v).split(goString(sep)),
  index: (v, ...keys) => keys.reduce<unknown>((acc, k) => (acc !== null && typeof acc === 'object' ? (acc as Record<string, unknown>)[String(k)] : undefined), v),
  len: (v) => (Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0),
  truncate: (v, n) => [...goString(v)].slice(0, Number(n)).join(''),
  pad: (v, l, r) => ' '.repeat(Number(l)) + goString(v) + ' '.repeat(Number(r)),
  println: (...a) => a.map(goString).join(' ') + '\n',
  print: (...a) => a.map(goString).join(''),
  printf: (fmt, ...a) => {
    let i = 0;
    return goString(fmt).replace(/%([svdq%])/g, (_m, c: string) => (c === '%' ? '%' : c === 'q' ? JSON.stringify(goString(a[i++])) : goString(a[i++])));
  },
};

function lookup(dot: unknown, path: string[], args: unknown[]): unknown {
  let v: unknown = dot;
  for (let i = 0; i < path.length; i++) {
    if (v === null || v === undefined || typeof v !== 'object') return undefined;
    const next = (v as Record<string, unknown>)[path[i]];
    if (typeof next === 'function') v = (next as (...a: unknown[]) => unknown).apply(v, i === path.length - 1 ? args : []);
    else v = next;
  }
  return v;
}

function evalCommand(cmd: Command, dot: unknown, piped: unknown[]): unknown {
  const value = (o: Operand): unknown => (o.kind === 'field' ? lookup(dot, o.path, []) : o.kind === 'literal' ? o.value : FUNCS[o.name]());
  const [head, ...rest] = cmd;
  const args = [...rest.map(value), ...piped];
  if (head.kind === 'ident') return FUNCS[head.name](...args);
  if (head.kind === 'field') return lookup(dot, head.path, args);
  return head.value;
}

export function renderTemplate(t: Template, dot: unknown): string {
  let out = '';
  for (const n of t.nodes) {
    if (n.kind === 'text') {
      out += n.text;
      continue;
    }
    let piped: unknown[] = [];
    let v: unknown;
    for (const cmd of n.pipeline) {
      v = evalCommand(cmd, dot, piped);
      piped = [v];
    }
    out += goString(v);
  }
  return out;
}
