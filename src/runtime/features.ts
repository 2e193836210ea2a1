// What `berth-oci features` prints: the runtime-spec "Features structure" (features.md,
// features-linux.md). It describes what berth implements, not what this host can do, so
// it is data; the lists owned by other modules (capabilities, seccomp) come from them and
// can be overridden.

import { CAPABILITIES } from './capabilities.js';
import { SeccompAction, SeccompArch, SeccompCompare, SeccompFlag } from './seccomp.js';
import { OCI_VERSION } from './spec.js';

export const OCI_VERSION_MIN = '1.0.0';

export const FEATURE_HOOKS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'];

/** Namespace types berth can create or join. */
export const FEATURE_NAMESPACES = ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'];

/** The mount options a config may use, as runc recognizes them. */
export const FEATURE_MOUNT_OPTIONS = [
  'acl', 'async', 'atime', 'bind', 'defaults', 'dev', 'diratime', 'dirsync', 'exec', 'iversion',
  'lazytime', 'loud', 'mand', 'noacl', 'noatime', 'nodev', 'nodiratime', 'noexec', 'noiversion',
  'nolazytime', 'nomand', 'norelatime', 'nostrictatime', 'nosuid', 'nosymfollow', 'private',
  'ratime', 'rbind', 'rdev', 'rdiratime', 'relatime', 'remount', 'rexec', 'rnoatime', 'rnodev',
  'rnodiratime', 'rnoexec', 'rnorelatime', 'rnostrictatime', 'rnosuid', 'rnosymfollow', 'ro',
  'rprivate', 'rrelatime', 'rro', 'rrw', 'rshared', 'rslave', 'rstrictatime', 'rsuid',
  'rsymfollow', 'runbindable', 'rw', 'shared', 'silent', 'slave', 'strictatime', 'suid',
  'symfollow', 'sync', 'tmpcopyup', 'unbindable',
];

/**
 * The seccomp lists seccomp.ts compiles. SCMP_ACT_NOTIFY is left out: berth has no
 * listener to hand the notify fd to, so seccomp.ts refuses it.
 */
export function defaultSeccompFeatures(): SeccompFeatures {
  const flags = Object.keys(SeccompFlag);
  return {
    actions: Object.keys(SeccompAction).filter((a) => a !== 'SCMP_ACT_NOTIFY'),
    operators: Object.keys(SeccompCompare),
    archs: Object.keys(SeccompArch),
    knownFlags: flags,
    supportedFlags: flags,
  };
}

export interface SeccompFeatures {
  actions: readonly string[];
  operators: readonly string[];
  archs: readonly string[];
  knownFlags: readonly string[];
  /** The subset of knownFlags that this kernel and libseccomp support. */
  supportedFlags: readonly string[];
}

export interface CgroupFeatures {
  v1: boolean;
  v2: boolean;
  systemd: boolean;
  systemdUser: boolean;
  rdma: boolean;
}

export interface FeaturesInput {
  /** Every capability name berth recognizes; defaults to capabilities.ts's table. */
  capabilities?: readonly string[];
  /** Seccomp lists; defaults to defaultSeccompFeatures(); null when seccomp is unavailable. */
  seccomp?: SeccompFeatures | null;
  /** Defaults to FEATURE_MOUNT_OPTIONS. */
  mountOptions?: readonly string[];
  /** Defaults to v1 and v2 without systemd or rdma. */
  cgroup?: Partial<CgroupFeatures>;
  apparmor?: boolean;
  selinux?: boolean;
  /** Whether mounts[].uidMappings/gidMappings (id-mapped mounts) are honoured. */
  idmapMounts?: boolean;
  /** Extra annotations, e.g. the berth and libseccomp versions. */
  annotations?: Record<string, string>;
}

export interface Features {
  ociVersionMin: string;
  ociVersionMax: string;
  hooks: string[];
  mountOptions: string[];
  linux: {
    namespaces: string[];
    capabilities: string[];
    cgroup: CgroupFeatures;
    seccomp: { enabled: boolean } & Partial<Record<keyof SeccompFeatures, string[]>>;
    apparmor: { enabled: boolean };
    selinux: { enabled: boolean };
    intelRdt: { enabled: boolean };
    mountExtensions: { idmap: { enabled: boolean } };
  };
  annotations: Record<string, string>;
}

const sorted = (list: readonly string[]): string[] => [...list].sort();

/** The Features structure for `berth-oci features`. */
export function features(input: FeaturesInput = {}): Features {
  const lists = input.seccomp === undefined ? defaultSeccompFeatures() : input.seccomp;
  const seccomp = lists
    ? {
        enabled: true,
        actions: sorted(lists.actions),
        operators: sorted(lists.operators),
        archs: sorted(lists.archs),
        knownFlags: [...lists.knownFlags],
        supportedFlags: [...lists.supportedFlags],
      }
    : { enabled: false };
  return {
    ociVersionMin: OCI_VERSION_MIN,
    ociVersionMax: OCI_VERSION,
    hooks: [...FEATURE_HOOKS],
    mountOptions: sorted(input.mountOptions ?? FEATURE_MOUNT_OPTIONS),
    linux: {
      namespaces: [...FEATURE_NAMESPACES],
      capabilities: [...(input.capabilities ?? CAPABILITIES)],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false, ...input.cgroup },
      seccomp,
      apparmor: { enabled: input.apparmor ?? true },
      selinux: { enabled: input.selinux ?? true },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: input.idmapMounts ?? false } },
    },
    annotations: { ...input.annotations },
  };
}
