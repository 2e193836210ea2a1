// Platforms as the OCI image index names them (os/architecture/variant) and the choice of
// one manifest out of an index. Names follow containerd's normalisation so that an index
// written by Docker, Podman or buildx matches the same way it does for them.
import { BerthError } from '../../errors.js';
import type { Descriptor, ImageIndex, Platform } from '../types.js';

/** Node's process.arch → the GOARCH-style names images use. */
const NODE_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le', // Node on Linux ppc64 is little-endian
  s390x: 's390x',
  riscv64: 'riscv64',
  mips64el: 'mips64le',
  mipsel: 'mipsle',
  loong64: 'loong64',
};

/** Spellings people type (uname -m, Debian names) → the OCI architecture and variant. */
const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
};

export function hostPlatform(): Platform {
  const architecture = NODE_ARCH[process.arch] ?? process.arch;
  if (architecture === 'arm64') return { os: 'linux', architecture, variant: 'v8' };
  if (architecture === 'arm') {
    const version = (process.config.variables as { arm_version?: string }).arm_version;
    return { os: 'linux', architecture, variant: `v${version && /^\d+$/.test(version) ? version : '7'}` };
  }
  return { os: 'linux', architecture };
}

/** 'linux/arm64/v8', 'linux/amd64', 'linux/arm/v7' (os and architecture are required). */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split('/');
  const bad = (why: string): BerthError =>
    new BerthError('InvalidArgument', `platform "${s}": ${why}`, { hint: 'expected os/architecture[/variant], e.g. linux/arm64/v8' });
  if (parts.length < 2 || parts.length > 3) throw bad('needs two or three parts separated by "/"');
  const [os, arch, variant] = parts as [string, string, string | undefined];
  const part = /^[a-z0-9._-]+$/;
  if (!part.test(os)) throw bad(`invalid os "${os}"`);
  if (!part.test(arch)) throw bad(`invalid architecture "${arch}"`);
  if (variant !== undefined && !part.test(variant)) throw bad(`invalid variant "${variant}"`);
  const alias = ARCH_ALIASES[arch];
  const platform: Platform = { os, architecture: alias?.architecture ?? arch };
  const v = variant ?? alias?.variant;
  if (v !== undefined) platform.variant = v;
  return platform;
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');
}

/**
 * The same platform with the defaults spelled out, so that equal platforms compare equal:
 * arm64 without a variant is v8, arm without one is v7, amd64's v1 is no variant.
 */
export function normalizePlatform(p: Platform): Platform {
  const alias = ARCH_ALIASES[p.architecture.toLowerCase()];
  const architecture = alias?.architecture ?? p.architecture.toLowerCase();
  let variant = (p.variant ?? alias?.variant)?.toLowerCase() || undefined;
  if (architecture === 'arm64' && (variant === undefined || variant === '8')) variant = 'v8';
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  if (architecture === 'arm' && variant !== undefined && /^\d+$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  const out: Platform = { os: p.os.toLowerCase(), architecture };
  if (variant !== undefined) out.variant = variant;
  return out;
}

/**
 * How well `have` serves `want`: 0 = exact, higher = acceptable but worse (an older arm
 * variant on a newer CPU), undefined = unusable.
 */
function matchRank(want: Platform, have: Platform): number | undefined {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return undefined;
  if (w.variant === h.variant) return 0;
  // A v7 CPU runs v6 and v5 binaries; an explicit newer variant never runs on an older CPU.
  if (w.architecture === 'arm' && w.variant && h.variant) {
    const wv = Number(w.variant.slice(1));
    const hv = Number(h.variant.slice(1));
    if (Number.isInteger(wv) && Number.isInteger(hv) && hv < wv) return wv - hv;
  }
  return undefined;
}

/** The manifest of `index` for platform `want`; `where` names the image for the message. */
export function selectManifest(index: ImageIndex, want: Platform, where: string): Descriptor {
  let best: { desc: Descriptor; rank: number } | undefined;
  for (const desc of index.manifests ?? []) {
    if (!desc.platform) continue;
    const rank = matchRank(want, desc.platform);
    if (rank !== undefined && (best === undefined || rank < best.rank)) best = { desc, rank };
  }
  if (best) return best.desc;
  const available = [
    ...new Set(
      (index.manifests ?? [])
        .filter((d) => d.platform && d.platform.os !== 'unknown')
        .map((d) => formatPlatform(d.platform!)),
    ),
  ];
  throw new BerthError(
    'NotFound',
    `${where}: no image for platform ${formatPlatform(normalizePlatform(want))}; the index has ${
      available.length ? available.join(', ') : 'no platform-specific images'
    }`,
    { hint: available.length ? 'choose one of those platforms' : undefined },
  );
}
