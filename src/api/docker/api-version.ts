// The Docker Engine API versions berth speaks. The docker CLI 28 asks for 1.50 and negotiates
// down to what /_ping announces; Debian's docker 20.10 speaks 1.41.
import { BerthError } from '../../errors.js';

export const MIN_API_VERSION = '1.41';
export const MAX_API_VERSION = '1.47';

/** Compares "1.41"-style versions numerically (1.9 < 1.10). */
export function compareApiVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export function apiVersionAtLeast(version: string, min: string): boolean {
  return compareApiVersions(version, min) >= 0;
}

const VERSIONED = /^\/v([0-9]+(?:\.[0-9]+)*)(\/.*)$/;

/**
 * Splits `/v1.41/containers/json` into its version and path. An unversioned path gets the
 * newest version, as dockerd does. Versions out of range are refused with dockerd's wording.
 */
export function splitVersion(pathname: string): { version: string; path: string } {
  const m = VERSIONED.exec(pathname);
  if (!m) return { version: MAX_API_VERSION, path: pathname };
  const version = m[1]!;
  if (compareApiVersions(version, MAX_API_VERSION) > 0) {
    throw new BerthError('InvalidArgument', `client version ${version} is too new. Maximum supported API version is ${MAX_API_VERSION}`);
  }
  if (compareApiVersions(version, MIN_API_VERSION) < 0) {
    throw new BerthError('InvalidArgument', `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
  }
  return { version, path: m[2]! };
}
