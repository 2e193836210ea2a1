// The config.json that `berth-oci spec` writes: runc's default spec, so that tools and
// tutorials written against `runc spec` keep working, with berth's hostname. The rootless
// variant makes the changes `runc spec --rootless` makes.

import { OCI_VERSION, type Mount, type Spec } from './spec.js';

export interface DefaultSpecOptions {
  rootless?: boolean;
  args?: string[];
  /** Host uid mapped to root in the rootless variant; defaults to the effective uid. */
  uid?: number;
  /** Host gid mapped to root in the rootless variant; defaults to the effective gid. */
  gid?: number;
}

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

export const DEFAULT_MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/proc/scsi',
];

export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

function defaultMounts(): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc' },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
    },
  ];
}

/** A fresh default spec (callers may modify it). */
export function defaultSpec(opts: DefaultSpecOptions = {}): Spec {
  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: opts.args && opts.args.length > 0 ? [...opts.args] : ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPS],
        effective: [...DEFAULT_CAPS],
        permitted: [...DEFAULT_CAPS],
        ambient: [...DEFAULT_CAPS],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'berth',
    mounts: defaultMounts(),
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
  return opts.rootless ? toRootless(spec, opts) : spec;
}

/**
 * What `runc spec --rootless` changes: a user namespace mapping root to the caller instead
 * of a network namespace (an unprivileged user cannot configure one), /sys bind-mounted
 * from the host (sysfs cannot be mounted without owning the network namespace), no uid=/gid=
 * mount options (those ids may not be mapped) and no cgroup resources.
 */
function toRootless(spec: Spec, opts: DefaultSpecOptions): Spec {
  const uid = opts.uid ?? process.geteuid?.() ?? 0;
  const gid = opts.gid ?? process.getegid?.() ?? 0;
  const { namespaces, maskedPaths, readonlyPaths } = spec.linux!;
  spec.linux = {
    uidMappings: [{ containerID: 0, hostID: uid, size: 1 }],
    gidMappings: [{ containerID: 0, hostID: gid, size: 1 }],
    namespaces: [...namespaces!.filter((ns) => ns.type !== 'network' && ns.type !== 'user'), { type: 'user' }],
    maskedPaths,
    readonlyPaths,
  };
  spec.mounts = spec.mounts!.map((mount): Mount => {
    if (mount.destination === '/sys') {
      return { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
    }
    if (!mount.options) return mount;
    return { ...mount, options: mount.options.filter((o) => !o.startsWith('uid=') && !o.startsWith('gid=')) };
  });
  return spec;
}
