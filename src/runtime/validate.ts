// Validation of config.json against the Linux part of the OCI runtime-spec (1.0 to 1.2).
// Every known field is type-checked with its exact JSON path in the message; unknown
// fields are ignored (forward compatibility). Deep semantics that need a module's own
// tables (mount options, seccomp names) are the compiler's; this file checks shapes and
// the rules the spec states for the config alone.

import { posix } from 'node:path';
import { BerthError } from '../errors.js';
import { capabilityNumber } from './capabilities.js';
import { isRlimitName } from './rlimits.js';
import type { Spec } from './spec.js';

export const SPEC_NAMESPACE_TYPES = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'] as const;

const PROPAGATIONS = ['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared', 'unbindable', 'runbindable'];
const IOPRIO_CLASSES = ['IOPRIO_CLASS_RT', 'IOPRIO_CLASS_BE', 'IOPRIO_CLASS_IDLE'];
const SCHED_POLICIES = ['SCHED_OTHER', 'SCHED_FIFO', 'SCHED_RR', 'SCHED_BATCH', 'SCHED_ISO', 'SCHED_IDLE', 'SCHED_DEADLINE'];
const PERSONALITY_DOMAINS = ['LINUX', 'LINUX32'];
const DEVICE_TYPES = ['c', 'b', 'u', 'p'];
const DEVICE_CGROUP_TYPES = ['a', 'c', 'b'];
const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'];

type Obj = Record<string, unknown>;

/** Checks a value at a path; returns true when it has the right shape. */
type Rule = (c: Checker, value: unknown, path: string) => boolean;

class Checker {
  readonly problems: string[] = [];

  fail(path: string, message: string): false {
    this.problems.push(path === '' ? message : `${path}: ${message}`);
    return false;
  }
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function child(path: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;
}

// ---- primitive rules ----

const str: Rule = (c, v, p) => typeof v === 'string' || c.fail(p, `expected a string, got ${show(v)}`);
const bool: Rule = (c, v, p) => typeof v === 'boolean' || c.fail(p, `expected a boolean, got ${show(v)}`);

// 2^63-1 and 2^64-1 are not doubles; JSON gives them to us as 2^63 and 2^64.
function showBound(n: number): string {
  if (n === 2 ** 64) return '18446744073709551615';
  if (n === 2 ** 63) return '9223372036854775807';
  if (n === -(2 ** 63)) return '-9223372036854775808';
  return String(n);
}

/** Integers within [min, max]; bounds beyond 2^53 are compared as doubles (JSON numbers are). */
function int(min: number, max: number): Rule {
  const range = `an integer from ${showBound(min)} to ${showBound(max)}`;
  return (c, v, p) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      return c.fail(p, `expected ${min === 0 ? 'a non-negative integer' : 'an integer'}, got ${show(v)}`);
    }
    if (v < min) return c.fail(p, min === 0 ? `expected a non-negative integer, got ${v}` : `expected ${range}, got ${v}`);
    if (v > max) return c.fail(p, `expected ${range}, got ${v}`);
    return true;
  };
}

const uint16 = int(0, 0xffff);
const uint32 = int(0, 0xffffffff);
// uid/gid: (uid_t)-1 means "leave unchanged" to setresuid, so the top of the range is refused (as runc does).
const id32 = int(0, 0x7fffffff);
const int32 = int(-(2 ** 31), 2 ** 31 - 1);
const uint64 = int(0, 2 ** 64);
const int64 = int(-(2 ** 63), 2 ** 63);
/** int64 fields where -1 means unlimited and other negative values mean nothing. */
const limit64 = int(-1, 2 ** 63);

function oneOf(values: readonly string[], what: string): Rule {
  return (c, v, p) => {
    if (!str(c, v, p)) return false;
    return values.includes(v as string) || c.fail(p, `unknown ${what} ${show(v)} (expected one of ${values.join(', ')})`);
  };
}

const absPath: Rule = (c, v, p) => {
  if (!str(c, v, p)) return false;
  return posix.isAbsolute(v as string) || c.fail(p, `expected an absolute path, got ${show(v)}`);
};

function array(item: Rule, opts: { nonEmpty?: boolean } = {}): Rule {
  return (c, v, p) => {
    if (!Array.isArray(v)) return c.fail(p, `expected an array, got ${show(v)}`);
    if (opts.nonEmpty && v.length === 0) return c.fail(p, 'must not be empty');
    let ok = true;
    v.forEach((x, i) => {
      ok = item(c, x, `${p}[${i}]`) && ok;
    });
    return ok;
  };
}

const strings = array(str);

/** A JSON object used as a map from arbitrary keys to values of one shape. */
function map(value: Rule): Rule {
  return (c, v, p) => {
    if (!isObj(v)) return c.fail(p, `expected an object, got ${show(v)}`);
    let ok = true;
    for (const [k, x] of Object.entries(v)) ok = value(c, x, child(p, k)) && ok;
    return ok;
  };
}

interface Field {
  rule: Rule;
  required?: boolean;
  /** null is a value of its own here, not "absent" (device cgroup major/minor). */
  nullable?: boolean;
}

type Fields = Record<string, Rule | Field>;

/**
 * An object with known fields. Optional fields set to null are dropped, as Go's decoder
 * (and so runc) treats them as absent. `then` runs only when every field had its shape.
 */
function object(fields: Fields, then?: (c: Checker, o: Obj, path: string) => void): Rule {
  return (c, v, p) => {
    if (!isObj(v)) return c.fail(p, `expected an object, got ${show(v)}`);
    let ok = true;
    for (const [key, spec] of Object.entries(fields)) {
      const field: Field = typeof spec === 'function' ? { rule: spec } : spec;
      const path = child(p, key);
      const value = v[key];
      if (value === undefined || (value === null && !field.nullable)) {
        if (field.required) ok = c.fail(path, 'required field is missing');
        else if (value === null) delete v[key];
        continue;
      }
      if (value === null) continue;
      ok = field.rule(c, value, path) && ok;
    }
    if (ok && then) then(c, v, p);
    return ok;
  };
}

const req = (rule: Rule): Field => ({ rule, required: true });

// ---- the spec ----

const idMapping = object({ containerID: req(uint32), hostID: req(uint32), size: req(uint32) });
const idMappings = array(idMapping);

const ociVersion: Rule = (c, v, p) => {
  if (!str(c, v, p)) return false;
  const m = /^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.exec(v as string);
  if (!m) return c.fail(p, `expected a version like "1.2.0", got ${show(v)}`);
  // Minor versions only add optional fields, which are ignored when unknown: accept all 1.x
  // (as runc does), so newer engines keep working.
  if (m[1] !== '1') return c.fail(p, `unsupported version ${show(v)} (berth supports 1.x)`);
  return true;
};

const rlimitType: Rule = (c, v, p) => {
  if (!str(c, v, p)) return false;
  return isRlimitName(v as string) || c.fail(p, `unknown rlimit type ${show(v)} (expected RLIMIT_CPU, RLIMIT_NOFILE, ... RLIMIT_RTTIME)`);
};

const rlimit = object({ type: req(rlimitType), soft: req(uint64), hard: req(uint64) }, (c, o, p) => {
  if ((o.soft as number) > (o.hard as number)) {
    c.fail(p, `soft limit ${o.soft} is above hard limit ${o.hard} for ${o.type as string}`);
  }
});

const rlimits: Rule = (c, v, p) => {
  if (!array(rlimit)(c, v, p)) return false;
  const seen = new Map<string, number>();
  (v as Obj[]).forEach((r, i) => {
    const first = seen.get(r.type as string);
    if (first !== undefined) c.fail(`${p}[${i}].type`, `duplicate rlimit type ${show(r.type)} (also at ${p}[${first}])`);
    else seen.set(r.type as string, i);
  });
  return true;
};

const capabilityName: Rule = (c, v, p) => {
  if (!str(c, v, p)) return false;
  if (capabilityNumber(v as string) !== undefined) return true;
  const prefixed = capabilityNumber(`CAP_${v as string}`) !== undefined;
  return c.fail(p, `unknown capability ${show(v)}${prefixed ? ` (write it "CAP_${(v as string).toUpperCase()}")` : ' (see capabilities(7))'}`);
};
const capabilityList = array(capabilityName);

const capabilities = object({
  bounding: capabilityList,
  effective: capabilityList,
  inheritable: capabilityList,
  permitted: capabilityList,
  ambient: capabilityList,
});

const cwd: Rule = (c, v, p) => {
  if (!str(c, v, p)) return false;
  return posix.isAbsolute(v as string) || c.fail(p, `must be an absolute path, got ${show(v)}`);
};

const processRule = object(
  {
    terminal: bool,
    consoleSize: object({ height: req(uint32), width: req(uint32) }),
    user: req(object({ uid: req(id32), gid: req(id32), umask: uint32, additionalGids: array(id32), username: str })),
    args: req(array(str, { nonEmpty: true })),
    commandLine: str,
    env: strings,
    cwd: req(cwd),
    capabilities,
    rlimits,
    noNewPrivileges: bool,
    apparmorProfile: str,
    oomScoreAdj: int(-1000, 1000),
    selinuxLabel: str,
    ioPriority: object({ class: req(oneOf(IOPRIO_CLASSES, 'I/O priority class')), priority: int(0, 7) }),
    scheduler: object({
      policy: req(oneOf(SCHED_POLICIES, 'scheduler policy')),
      nice: int32,
      priority: int32,
      flags: strings,
      runtime: uint64,
      deadline: uint64,
      period: uint64,
    }),
    execCPUAffinity: object({ initial: str, final: str }),
  },
);

const mount = object({
  destination: req(str),
  type: str,
  source: str,
  options: strings,
  uidMappings: idMappings,
  gidMappings: idMappings,
});

const positive: Rule = (c, v, p) =>
  (typeof v === 'number' && Number.isInteger(v) && v > 0) || c.fail(p, `expected a positive integer, got ${show(v)}`);

const hook = object({ path: req(absPath), args: strings, env: strings, timeout: positive });
const hooks = object(Object.fromEntries(HOOK_KINDS.map((k) => [k, array(hook)])));

const namespace = object({ type: req(oneOf(SPEC_NAMESPACE_TYPES, 'namespace type')), path: absPath });

const namespaces: Rule = (c, v, p) => {
  if (!array(namespace)(c, v, p)) return false;
  const seen = new Map<string, number>();
  (v as Obj[]).forEach((ns, i) => {
    const first = seen.get(ns.type as string);
    if (first !== undefined) c.fail(`${p}[${i}].type`, `duplicate namespace type ${show(ns.type)} (also at ${p}[${first}])`);
    else seen.set(ns.type as string, i);
  });
  return true;
};

const device = object(
  {
    type: req(oneOf(DEVICE_TYPES, 'device type')),
    path: req(absPath),
    major: int64,
    minor: int64,
    fileMode: uint32,
    uid: uint32,
    gid: uint32,
  },
  (c, o, p) => {
    if (o.type === 'p') return;
    for (const key of ['major', 'minor']) {
      if (o[key] === undefined) c.fail(child(p, key), `required for a device of type "${o.type as string}"`);
    }
  },
);

const accessRule: Rule = (c, v, p) => {
  if (!str(c, v, p)) return false;
  return /^[rwm]*$/.test(v as string) || c.fail(p, `expected a combination of "r", "w" and "m", got ${show(v)}`);
};

const deviceCgroup = object({
  allow: req(bool),
  type: oneOf(DEVICE_CGROUP_TYPES, 'device cgroup type'),
  major: { rule: int64, nullable: true },
  minor: { rule: int64, nullable: true },
  access: accessRule,
});

const throttleDevice = object({ major: req(int64), minor: req(int64), rate: req(uint64) });

const resources = object({
  devices: array(deviceCgroup),
  memory: object({
    limit: limit64,
    reservation: limit64,
    swap: limit64,
    kernel: limit64,
    kernelTCP: limit64,
    swappiness: uint64,
    disableOOMKiller: bool,
    useHierarchy: bool,
    checkBeforeUpdate: bool,
  }),
  cpu: object({
    shares: uint64,
    quota: int64,
    burst: uint64,
    period: uint64,
    realtimeRuntime: int64,
    realtimePeriod: uint64,
    cpus: str,
    mems: str,
    idle: int64,
  }),
  pids: object({ limit: req(int64) }),
  blockIO: object({
    weight: uint16,
    leafWeight: uint16,
    weightDevice: array(object({ major: req(int64), minor: req(int64), weight: uint16, leafWeight: uint16 })),
    throttleReadBpsDevice: array(throttleDevice),
    throttleWriteBpsDevice: array(throttleDevice),
    throttleReadIOPSDevice: array(throttleDevice),
    throttleWriteIOPSDevice: array(throttleDevice),
  }),
  hugepageLimits: array(object({ pageSize: req(str), limit: req(uint64) })),
  network: object({ classID: uint32, priorities: array(object({ name: req(str), priority: req(uint32) })) }),
  rdma: map(object({ hcaHandles: uint32, hcaObjects: uint32 })),
  unified: map(str),
});

const seccompArg = object({ index: req(int(0, 5)), value: req(uint64), valueTwo: uint64, op: req(str) });

const seccomp = object({
  defaultAction: req(str),
  defaultErrnoRet: uint32,
  architectures: strings,
  flags: strings,
  listenerPath: absPath,
  listenerMetadata: str,
  syscalls: array(
    object({ names: req(array(str, { nonEmpty: true })), action: req(str), errnoRet: uint32, args: array(seccompArg) }),
  ),
});

const linuxRule = object({
  namespaces,
  uidMappings: idMappings,
  gidMappings: idMappings,
  timeOffsets: map(object({ secs: int64, nanosecs: uint32 })),
  devices: array(device),
  netDevices: map(object({ name: str })),
  cgroupsPath: str,
  resources,
  rootfsPropagation: oneOf(PROPAGATIONS, 'rootfs propagation'),
  seccomp,
  sysctl: map(str),
  maskedPaths: strings,
  readonlyPaths: strings,
  mountLabel: str,
  personality: object({ domain: req(oneOf(PERSONALITY_DOMAINS, 'personality domain')), flags: strings }),
  intelRdt: object({
    closID: str,
    l3CacheSchema: str,
    memBwSchema: str,
    schemata: strings,
    enableCMT: bool,
    enableMBM: bool,
    enableMonitoring: bool,
  }),
});

const specRule = object({
  ociVersion: req(ociVersion),
  process: processRule,
  root: req(object({ path: req(str), readonly: bool })),
  hostname: str,
  domainname: str,
  mounts: array(mount),
  hooks,
  annotations: map(str),
  linux: linuxRule,
});

/** Rules that relate fields to each other; they run on a structurally valid spec. */
function checkRelations(c: Checker, spec: Spec): void {
  const nsList = spec.linux?.namespaces ?? [];
  const has = (type: string) => nsList.some((ns) => ns.type === type);
  const userNs = nsList.find((ns) => ns.type === 'user');
  const mappings = (spec.linux?.uidMappings?.length ?? 0) + (spec.linux?.gidMappings?.length ?? 0);
  if (!userNs && mappings > 0) {
    const field = spec.linux?.uidMappings?.length ? 'linux.uidMappings' : 'linux.gidMappings';
    c.fail(field, 'id mappings need a user namespace (add {"type": "user"} to linux.namespaces)');
  }
  if (userNs && userNs.path === undefined) {
    for (const key of ['uidMappings', 'gidMappings'] as const) {
      if (!spec.linux?.[key]?.length) {
        c.fail(`linux.${key}`, 'required when a new user namespace is created (linux.namespaces has "user" without a path)');
      }
    }
  }
  for (const key of ['hostname', 'domainname'] as const) {
    if (spec[key] && !has('uts')) {
      c.fail(key, `cannot set ${key} ${show(spec[key])} without a UTS namespace (add {"type": "uts"} to linux.namespaces)`);
    }
  }
}

/**
 * Runc accepts a relative mount destination as relative to "/"; berth does the same and
 * returns it absolute so that later stages see only absolute paths.
 */
function normalizeMounts(spec: Spec): void {
  for (const m of spec.mounts ?? []) {
    if (!posix.isAbsolute(m.destination)) m.destination = posix.join('/', m.destination);
  }
}

/**
 * Checks a decoded config.json and returns it as a Spec: a copy, with optional fields set
 * to null removed and relative mount destinations made absolute. Throws InvalidArgument
 * naming the first problem (and the count of others) with its JSON path.
 */
export function validateSpec(value: unknown, file = 'config.json'): Spec {
  const c = new Checker();
  const copy = structuredClone(value);
  if (!isObj(copy)) {
    c.fail('', `expected a JSON object at the top level, got ${show(copy)}`);
  } else if (specRule(c, copy, '')) {
    checkRelations(c, copy as unknown as Spec);
  }
  const [first, ...rest] = c.problems;
  if (first !== undefined) {
    throw new BerthError('InvalidArgument', `${file}: ${first}`, {
      hint: rest.length === 0 ? undefined : `and ${rest.length} more: ${rest.join('; ')}`,
    });
  }
  const spec = copy as unknown as Spec;
  normalizeMounts(spec);
  return spec;
}

/** Parses and validates the text of a config.json. */
export function parseSpec(text: string, file = 'config.json'): Spec {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const { offset, reason } = locateJsonError(text);
    const { line, column } = lineColumn(text, offset);
    throw new BerthError('InvalidArgument', `${file}: invalid JSON at line ${line} column ${column}: ${reason}`, {
      cause,
      hint: 'fix the file or regenerate it with `berth-oci spec`',
    });
  }
  return validateSpec(value, file);
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - (before.lastIndexOf('\n') + 1) + 1 };
}

/**
 * Finds where JSON text goes wrong. V8's messages differ between versions and often lack
 * a position, so a small scanner of our own reports the offset and the reason.
 */
export function locateJsonError(text: string): { offset: number; reason: string } {
  let i = 0;
  class Stop {
    constructor(readonly offset: number, readonly reason: string) {}
  }
  const stop = (reason: string, at = i): never => {
    throw new Stop(at, reason);
  };
  const here = (): string => (i < text.length ? `unexpected ${JSON.stringify(text[i])}` : 'unexpected end of input');
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const literal = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length;
    else stop(`${here()} (expected a value)`);
  };
  const string = (): void => {
    i++;
    for (;;) {
      if (i >= text.length) stop('unterminated string');
      const ch = text[i]!;
      if (ch === '"') {
        i++;
        return;
      }
      if (ch < ' ') stop('control character in string (escape it)');
      if (ch === '\\') {
        const esc = text[i + 1];
        if (esc === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) stop('bad \\u escape in string');
          i += 6;
        } else if (esc !== undefined && '"\\/bfnrt'.includes(esc)) i += 2;
        else stop(`bad escape "\\${esc ?? ''}" in string`);
      } else i++;
    }
  };
  const number = (): void => {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) stop(`${here()} (expected a value)`);
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') stop(`${here()} (expected a property name in double quotes)`);
        string();
        ws();
        if (text[i] !== ':') stop(`${here()} (expected ":" after a property name)`);
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        stop(`${here()} (expected "," or "}" after a property value)`);
      }
    } else if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        stop(`${here()} (expected "," or "]" after an array element)`);
      }
    } else if (ch === '"') string();
    else if (ch === 't') literal('true');
    else if (ch === 'f') literal('false');
    else if (ch === 'n') literal('null');
    else if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) number();
    else stop(`${here()} (expected a value)`);
  };
  try {
    value();
    ws();
    if (i < text.length) stop(`${here()} after the end of the JSON value`);
  } catch (e) {
    if (e instanceof Stop) return { offset: e.offset, reason: e.reason };
    throw e;
  }
  return { offset: text.length, reason: 'unexpected end of input' };
}
