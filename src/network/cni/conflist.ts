// CNI network configuration lists (`.conflist`) and single configurations (`.conf`), read
// and validated before any plugin runs, so a typo is reported against the file and the
// field instead of as a plugin's exit status halfway through a chain.
import { readFileSync } from 'node:fs';
import { BerthError } from '../../errors.js';

export interface CniConflist {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
  disableCheck?: boolean;
}

/** The spec versions whose result shapes the runner understands. */
export const CNI_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

// Network names and container ids share this rule in the spec.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Orders two "X.Y.Z" versions: negative, zero or positive. */
export function compareCniVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** A plugin type names an executable inside the plugin dirs; never a path out of them. */
export function checkPluginType(type: unknown): string | undefined {
  if (type === undefined) return 'missing';
  if (typeof type !== 'string') return `must be a string, got ${describe(type)}`;
  if (type === '') return 'must not be empty';
  if (type === '.' || type === '..' || type.includes('/') || type.includes('\0')) {
    return `"${type}" must be a file name in the plugin directories, not a path`;
  }
  return undefined;
}

function checkPlugin(p: unknown, path: string, problems: string[]): void {
  if (!isObject(p)) {
    problems.push(`${path}: must be an object, got ${describe(p)}`);
    return;
  }
  const typeProblem = checkPluginType(p.type);
  if (typeProblem) problems.push(`${path}.type: ${typeProblem}`);
  if (p.capabilities !== undefined) {
    if (!isObject(p.capabilities)) problems.push(`${path}.capabilities: must be an object, got ${describe(p.capabilities)}`);
    else {
      for (const [k, v] of Object.entries(p.capabilities)) {
        if (typeof v !== 'boolean') problems.push(`${path}.capabilities.${k}: must be true or false, got ${describe(v)}`);
      }
    }
  }
  if (p.ipam !== undefined) {
    if (!isObject(p.ipam)) problems.push(`${path}.ipam: must be an object, got ${describe(p.ipam)}`);
    else {
      const ipamProblem = checkPluginType(p.ipam.type);
      if (ipamProblem) problems.push(`${path}.ipam.type: ${ipamProblem}`);
    }
  }
  if (p.runtimeConfig !== undefined && !isObject(p.runtimeConfig)) {
    problems.push(`${path}.runtimeConfig: must be an object, got ${describe(p.runtimeConfig)}`);
  }
}

function checkHeader(doc: Record<string, unknown>, problems: string[]): void {
  if (doc.name === undefined) problems.push('name: missing');
  else if (typeof doc.name !== 'string') problems.push(`name: must be a string, got ${describe(doc.name)}`);
  else if (!NAME_RE.test(doc.name)) {
    problems.push(`name: "${doc.name}" must start with a letter or digit and hold only letters, digits, "_", "." and "-"`);
  }
  if (doc.cniVersion === undefined) problems.push('cniVersion: missing');
  else if (typeof doc.cniVersion !== 'string') problems.push(`cniVersion: must be a string, got ${describe(doc.cniVersion)}`);
  else if (!(CNI_VERSIONS as readonly string[]).includes(doc.cniVersion)) {
    problems.push(`cniVersion: "${doc.cniVersion}" is not a CNI version berth knows (${CNI_VERSIONS.join(', ')})`);
  }
}

// The spec of 0.4.0 types disableCheck as a string; 1.0.0 as a boolean. Both are accepted.
function parseDisableCheck(v: unknown, problems: string[]): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  problems.push(`disableCheck: must be true or false, got ${typeof v === 'string' ? `"${v}"` : describe(v)}`);
  return undefined;
}

/**
 * Parses a conflist, or a single plugin configuration (a `.conf`, which is wrapped into a list
 * of one). Every problem found is reported at once, each with its field path.
 */
export function parseConflist(text: string, source: string): CniConflist {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new BerthError('InvalidArgument', `CNI configuration ${source}: invalid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!isObject(doc)) {
    throw new BerthError('InvalidArgument', `CNI configuration ${source}: must be a JSON object, got ${describe(doc)}`);
  }
  const problems: string[] = [];
  checkHeader(doc, problems);
  const disableCheck = parseDisableCheck(doc.disableCheck, problems);
  let plugins: Record<string, unknown>[] = [];
  if (doc.plugins !== undefined) {
    if (!Array.isArray(doc.plugins)) problems.push(`plugins: must be an array, got ${describe(doc.plugins)}`);
    else if (doc.plugins.length === 0) problems.push('plugins: must name at least one plugin');
    else {
      doc.plugins.forEach((p, i) => checkPlugin(p, `plugins[${i}]`, problems));
      plugins = doc.plugins.filter(isObject).map((p) => structuredClone(p));
      if (
        doc.plugins.length > 1 &&
        typeof doc.cniVersion === 'string' &&
        (CNI_VERSIONS as readonly string[]).includes(doc.cniVersion) &&
        compareCniVersions(doc.cniVersion, '0.3.0') < 0
      ) {
        problems.push(`cniVersion: "${doc.cniVersion}" has no plugin chaining; a list of ${doc.plugins.length} plugins needs 0.3.0 or later`);
      }
    }
  } else if (doc.type !== undefined) {
    // A single configuration: the plugin object is the document without the list's fields.
    checkPlugin(doc, '', problems);
    const plugin = structuredClone(doc);
    delete plugin.name;
    delete plugin.cniVersion;
    delete plugin.disableCheck;
    plugins = [plugin];
  } else {
    problems.push('plugins: missing (a .conflist needs "plugins", a single .conf needs "type")');
  }
  if (problems.length > 0) {
    const fixed = problems.map((p) => (p.startsWith(': ') ? p.slice(2) : p.startsWith('.') ? p.slice(1) : p));
    throw new BerthError('InvalidArgument', `CNI configuration ${source}: ${fixed.join('; ')}`, {
      hint: 'see the CNI specification, section "Network configuration lists"',
    });
  }
  const out: CniConflist = { cniVersion: doc.cniVersion as string, name: doc.name as string, plugins };
  if (disableCheck !== undefined) out.disableCheck = disableCheck;
  return out;
}

/** Reads and parses a conflist file; a missing file is NotFound naming it. */
export function loadConflist(path: string): CniConflist {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BerthError(code === 'ENOENT' ? 'NotFound' : 'InvalidArgument', `CNI configuration ${path}: cannot read it: ${code ?? (err as Error).message}`, {
      cause: err,
    });
  }
  return parseConflist(text, path);
}
