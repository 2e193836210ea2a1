// Capabilities (CapAdd/CapDrop/Privileged), SecurityOpt and seccomp profiles as Docker
// reads them. A profile given with `seccomp=` is Docker's format (the CLI sends the file's
// content), which differs from the OCI one: archMap, includes/excludes by capability and
// architecture; it is converted here for the host's architecture.
import { CAPABILITIES, DEFAULT_CAPABILITIES, capabilityNumber } from '../../runtime/capabilities.js';
import { defaultSeccompProfile } from '../../runtime/seccomp.js';
import type { Seccomp, SeccompArg, SeccompSyscall } from '../../runtime/spec.js';
import { invalid, unsupported } from './invalid.js';

function normalizeCap(name: string, field: string): string {
  const upper = String(name).trim().toUpperCase();
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (capabilityNumber(full) === undefined) throw invalid(field, `unknown capability: "${full}"`);
  return full;
}

/**
 * The container's capability set with Docker's rules: Privileged gets all; "ALL" in CapAdd
 * gives all but CapDrop; "ALL" in CapDrop keeps only CapAdd; otherwise the default set
 * minus CapDrop plus CapAdd (an add wins over a drop of the same capability).
 */
export function effectiveCapabilities(opts: { capAdd?: readonly string[] | null; capDrop?: readonly string[] | null; privileged?: boolean }): string[] {
  if (opts.privileged) return [...CAPABILITIES];
  const isAll = (c: string) => c.trim().toUpperCase() === 'ALL' || c.trim().toUpperCase() === 'CAP_ALL';
  const add = (opts.capAdd ?? []).filter((c) => !isAll(c)).map((c, i) => normalizeCap(c, `HostConfig.CapAdd[${i}]`));
  const drop = (opts.capDrop ?? []).filter((c) => !isAll(c)).map((c, i) => normalizeCap(c, `HostConfig.CapDrop[${i}]`));
  let caps: string[];
  if ((opts.capAdd ?? []).some(isAll)) caps = CAPABILITIES.filter((c) => !drop.includes(c));
  else if ((opts.capDrop ?? []).some(isAll)) caps = [...add];
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...add];
  return [...new Set(caps)];
}

export interface SecurityOptions {
  noNewPrivileges: boolean;
  /** 'default' (Docker's profile), 'unconfined', or a profile (already OCI). */
  seccomp: 'default' | 'unconfined' | { profile: string; field: string };
  /** systempaths=unconfined: no masked or read-only /proc and /sys paths. */
  unmaskSystemPaths: boolean;
  warnings: string[];
}

/** Parses HostConfig.SecurityOpt ("key=value", or the old "key:value"). */
export function parseSecurityOpts(opts: readonly string[] | null | undefined): SecurityOptions {
  const out: SecurityOptions = { noNewPrivileges: false, seccomp: 'default', unmaskSystemPaths: false, warnings: [] };
  (opts ?? []).forEach((raw, i) => {
    const field = `HostConfig.SecurityOpt[${i}]`;
    let key: string;
    let value: string | undefined;
    const eq = raw.indexOf('=');
    if (eq >= 0) [key, value] = [raw.slice(0, eq), raw.slice(eq + 1)];
    else {
      const colon = raw.indexOf(':');
      [key, value] = colon >= 0 ? [raw.slice(0, colon), raw.slice(colon + 1)] : [raw, undefined];
    }
    switch (key) {
      case 'no-new-privileges':
        if (value === undefined || value === 'true') out.noNewPrivileges = true;
        else if (value === 'false') out.noNewPrivileges = false;
        else throw invalid(field, `invalid --security-opt: "${raw}"`, 'no-new-privileges takes true or false');
        return;
      case 'seccomp':
        if (value === undefined || value === '') throw invalid(field, `invalid --security-opt: "${raw}"`, 'seccomp=unconfined or seccomp=<profile JSON>');
        if (value === 'unconfined') out.seccomp = 'unconfined';
        else if (value === 'builtin') out.seccomp = 'default';
        else out.seccomp = { profile: value, field };
        return;
      case 'apparmor':
        if (value === 'unconfined') return;
        throw unsupported(field, `AppArmor profile "${value}"`, 'this host has no AppArmor; only apparmor=unconfined is accepted');
      case 'label':
        if (value === 'disable') return;
        throw unsupported(field, `SELinux label "${value}"`, 'this host has no SELinux; only label=disable is accepted');
      case 'systempaths':
        if (value === 'unconfined') {
          out.unmaskSystemPaths = true;
          return;
        }
        throw invalid(field, `invalid --security-opt: "${raw}"`, 'only systempaths=unconfined is known');
      default:
        throw invalid(field, `invalid --security-opt: "${raw}"`, 'known: no-new-privileges, seccomp=unconfined|<profile>, systempaths=unconfined, apparmor=unconfined, label=disable');
    }
  });
  return out;
}

/** Node's arch → [Docker's arch name, the native SCMP_ARCH]. */
const ARCH: Record<string, [string, string]> = {
  x64: ['amd64', 'SCMP_ARCH_X86_64'],
  ia32: ['386', 'SCMP_ARCH_X86'],
  arm64: ['arm64', 'SCMP_ARCH_AARCH64'],
  arm: ['arm', 'SCMP_ARCH_ARM'],
  ppc64: ['ppc64le', 'SCMP_ARCH_PPC64LE'],
  s390x: ['s390x', 'SCMP_ARCH_S390X'],
  riscv64: ['riscv64', 'SCMP_ARCH_RISCV64'],
  loong64: ['loong64', 'SCMP_ARCH_LOONGARCH64'],
};

interface DockerFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strings(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw invalid(field, 'must be an array of strings');
  return v as string[];
}

function kernelAtLeast(kernel: string | undefined, min: string): boolean {
  if (!kernel) return true;
  const parse = (s: string) => s.split(/[.-]/).slice(0, 2).map((n) => parseInt(n, 10) || 0);
  const [a, b] = parse(kernel);
  const [c, d] = parse(min);
  return a > c || (a === c && b >= d);
}

export interface SeccompProfileOptions {
  /** The container's capabilities: includes.caps/excludes.caps are checked against them. */
  capabilities: readonly string[];
  arch?: string;
  /** The host kernel's release ("6.18.0"): includes.minKernel. */
  kernel?: string;
}

/** Converts a Docker-format seccomp profile (JSON text) into the OCI section. */
export function dockerSeccompToOci(text: string, field: string, opts: SeccompProfileOptions): Seccomp {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalid(field, `decoding seccomp profile failed: ${(err as Error).message}`, 'seccomp= takes the profile\'s JSON content (the docker CLI reads the file for you)');
  }
  if (!isRecord(doc)) throw invalid(field, 'decoding seccomp profile failed: not a JSON object');
  const [dockerArch, nativeArch] = ARCH[opts.arch ?? process.arch] ?? [opts.arch ?? process.arch, ''];
  if (typeof doc.defaultAction !== 'string' || doc.defaultAction === '') throw invalid(field, 'the seccomp profile has no defaultAction');
  const out: Seccomp = { defaultAction: doc.defaultAction };
  if (doc.defaultErrnoRet !== undefined) out.defaultErrnoRet = doc.defaultErrnoRet as number;
  const arches = strings(doc.architectures, `${field} architectures`);
  if (arches.length > 0 && Array.isArray(doc.archMap) && doc.archMap.length > 0) {
    throw invalid(field, "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'");
  }
  if (arches.length > 0) out.architectures = arches;
  else if (Array.isArray(doc.archMap)) {
    for (const a of doc.archMap) {
      if (isRecord(a) && a.architecture === nativeArch) out.architectures = [nativeArch, ...strings(a.subArchitectures, `${field} archMap.subArchitectures`)];
    }
  }
  const flags = strings(doc.flags, `${field} flags`);
  if (flags.length > 0) out.flags = flags;
  if (typeof doc.listenerPath === 'string' && doc.listenerPath !== '') throw unsupported(field, 'a seccomp listenerPath (SCMP_ACT_NOTIFY)');
  const caps = new Set(opts.capabilities.map((c) => c.toUpperCase()));
  const syscalls: SeccompSyscall[] = [];
  const list = doc.syscalls ?? [];
  if (!Array.isArray(list)) throw invalid(field, 'syscalls must be an array');
  list.forEach((s: unknown, i: number) => {
    const where = `${field} syscalls[${i}]`;
    if (!isRecord(s)) throw invalid(where, 'must be an object');
    const names = strings(s.names, `${where}.names`);
    if (typeof s.name === 'string' && s.name !== '') {
      if (names.length > 0) throw invalid(where, "use either 'name' or 'names'");
      names.push(s.name);
    }
    const inc = (isRecord(s.includes) ? s.includes : {}) as DockerFilter;
    const exc = (isRecord(s.excludes) ? s.excludes : {}) as DockerFilter;
    if (inc.arches?.length && !inc.arches.includes(dockerArch)) return;
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(c.toUpperCase()))) return;
    if (inc.minKernel && !kernelAtLeast(opts.kernel, inc.minKernel)) return;
    if (exc.arches?.length && exc.arches.includes(dockerArch)) return;
    if (exc.caps?.length && exc.caps.some((c) => caps.has(c.toUpperCase()))) return;
    if (typeof s.action !== 'string') throw invalid(`${where}.action`, 'is required');
    const rule: SeccompSyscall = { names, action: s.action };
    if (s.errnoRet !== undefined) rule.errnoRet = s.errnoRet as number;
    if (Array.isArray(s.args) && s.args.length > 0) rule.args = s.args as SeccompArg[];
    syscalls.push(rule);
  });
  out.syscalls = syscalls;
  return out;
}

/** The seccomp section a container gets: none when privileged or unconfined. */
export function seccompFor(opts: { security: SecurityOptions; privileged: boolean; capabilities: readonly string[]; arch?: string; kernel?: string }): Seccomp | undefined {
  if (opts.privileged || opts.security.seccomp === 'unconfined') return undefined;
  if (opts.security.seccomp === 'default') return defaultSeccompProfile({ capabilities: opts.capabilities, ...(opts.arch ? { arch: opts.arch } : {}) });
  return dockerSeccompToOci(opts.security.seccomp.profile, opts.security.seccomp.field, { capabilities: opts.capabilities, arch: opts.arch, kernel: opts.kernel });
}
