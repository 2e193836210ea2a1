// `berth-oci features`: what this build and host support.
import { apparmorEnabled, selinuxEnabled } from '../runtime/host-security.js';
import { features } from '../runtime/features.js';
import { discoverCgroupHost } from '../runtime/cgroups/index.js';

export async function runtimeFeatures() {
  const host = await discoverCgroupHost().catch(() => undefined);
  return features({
    apparmor: apparmorEnabled(),
    selinux: selinuxEnabled(),
    cgroup: { v1: host ? host.mode !== 'v2' : true, v2: host ? host.mode !== 'v1' : true, systemd: false, systemdUser: false },
    annotations: { 'io.github.berth.version': '0.1.0' },
  });
}
