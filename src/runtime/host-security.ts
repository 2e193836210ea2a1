// Whether the host runs the Linux security modules that a config may ask for. The compiler
// asks before it plans an AppArmor profile or SELinux label, so that a config naming one
// on a host without the module fails with a clear error instead of an EINVAL from
// /proc/self/attr deep inside the container's start.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../errors.js';
import type { Spec } from './spec.js';

function readTrimmed(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** AppArmor is usable when the module is enabled and securityfs exposes its interface. */
export function apparmorEnabled(root = '/'): boolean {
  return (
    readTrimmed(join(root, 'sys/module/apparmor/parameters/enabled')) === 'Y' &&
    existsSync(join(root, 'sys/kernel/security/apparmor'))
  );
}

/** SELinux is usable when selinuxfs is mounted (it then has an `enforce` file). */
export function selinuxEnabled(root = '/'): boolean {
  return existsSync(join(root, 'sys/fs/selinux/enforce'));
}

/**
 * Fails when the spec asks for an AppArmor profile or an SELinux label (process or mount)
 * that this host cannot apply.
 */
export function checkSecurityModules(spec: Spec, root = '/'): void {
  const profile = spec.process?.apparmorProfile;
  if (profile && !apparmorEnabled(root)) {
    throw new BerthError('FailedPrecondition', `process.apparmorProfile "${profile}": AppArmor is not enabled on this host`, {
      hint: 'remove apparmorProfile from config.json or enable AppArmor',
    });
  }
  const labels: [string, string | undefined][] = [
    ['process.selinuxLabel', spec.process?.selinuxLabel],
    ['linux.mountLabel', spec.linux?.mountLabel],
  ];
  for (const [field, label] of labels) {
    if (label && !selinuxEnabled(root)) {
      throw new BerthError('FailedPrecondition', `${field} "${label}": SELinux is not enabled on this host`, {
        hint: `remove ${field} from config.json or enable SELinux`,
      });
    }
  }
}
