import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../errors.js';
import { defaultSpec } from './default-spec.js';
import { locateJsonError, parseSpec, validateSpec } from './validate.js';

type Json = Record<string, any>;

function base(): Json {
  return JSON.parse(JSON.stringify(defaultSpec())) as Json;
}

/** Asserts that the spec changed by `edit` fails with exactly `message` (after "config.json: "). */
function rejects(edit: (s: Json) => void, message: string | RegExp): BerthError {
  const spec = base();
  edit(spec);
  let caught: unknown;
  try {
    validateSpec(spec);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof BerthError, `expected a BerthError for ${message}`);
  assert.equal(caught.code, 'InvalidArgument');
  if (typeof message === 'string') assert.equal(caught.message, `config.json: ${message}`);
  else assert.match(caught.message, message);
  return caught;
}

function accepts(edit: (s: Json) => void) {
  const spec = base();
  edit(spec);
  return validateSpec(spec);
}

describe('validateSpec: whole documents', () => {
  it('accepts the default spec and its rootless variant', () => {
    assert.deepEqual(validateSpec(defaultSpec()), defaultSpec());
    validateSpec(defaultSpec({ rootless: true, uid: 1000, gid: 1000 }));
  });

  it('returns a copy and leaves the input alone', () => {
    const spec = base();
    spec.mounts[0].destination = 'proc';
    const out = validateSpec(spec);
    assert.equal(spec.mounts[0].destination, 'proc');
    assert.equal(out.mounts![0]!.destination, '/proc');
  });

  it('rejects a document that is not an object', () => {
    assert.throws(() => validateSpec([1]), { message: 'config.json: expected a JSON object at the top level, got [1]' });
    assert.throws(() => validateSpec(null), { message: 'config.json: expected a JSON object at the top level, got null' });
  });

  it('uses the file name given', () => {
    assert.throws(() => validateSpec({}, '/b/config.json'), { message: '/b/config.json: ociVersion: required field is missing' });
  });

  it('reports the first problem and counts the others in the hint', () => {
    const err = rejects((s) => {
      s.process.user.uid = 'root';
      s.process.cwd = 'tmp';
      s.hostname = 5;
    }, 'process.user.uid: expected a non-negative integer, got "root"');
    assert.match(err.hint!, /^and 2 more: process\.cwd: must be an absolute path, got "tmp"; hostname: expected a string, got 5$/);
  });

  it('ignores unknown fields at every level', () => {
    accepts((s) => {
      s.futureField = { anything: [1] };
      s.process.futureField = 1;
      s.linux.resources.futureController = 'x';
      s.mounts[0].futureOption = true;
    });
  });

  it('treats null as absent for optional fields and drops it', () => {
    const out = accepts((s) => {
      s.annotations = null;
      s.linux.seccomp = null;
      s.process.rlimits = null;
    });
    assert.equal('annotations' in out, false);
    assert.equal('seccomp' in out.linux!, false);
    assert.equal('rlimits' in out.process!, false);
  });

  it('treats null as missing for required fields', () => {
    rejects((s) => (s.root.path = null), 'root.path: required field is missing');
  });
});

describe('validateSpec: ociVersion and root', () => {
  it('requires ociVersion', () => {
    rejects((s) => delete s.ociVersion, 'ociVersion: required field is missing');
    rejects((s) => (s.ociVersion = 1), 'ociVersion: expected a string, got 1');
  });

  it('accepts 1.0.0 to 1.2.x, with pre-release and build parts', () => {
    for (const v of ['1.0.0', '1.0.2-dev', '1.1.0-rc.3', '1.2.0', '1.2.1', '1.2.9+build.1', '1.0.0-rc5']) {
      accepts((s) => (s.ociVersion = v));
    }
  });

  it('rejects other versions', () => {
    rejects((s) => (s.ociVersion = '2.0.0'), 'ociVersion: unsupported version "2.0.0" (berth supports 1.x)');
    rejects((s) => (s.ociVersion = '0.5.0'), /unsupported version "0.5.0"/);
    rejects((s) => (s.ociVersion = 'latest'), 'ociVersion: expected a version like "1.2.0", got "latest"');
  });

  it('requires root.path as a string; a relative path is fine', () => {
    rejects((s) => delete s.root, 'root: required field is missing');
    rejects((s) => delete s.root.path, 'root.path: required field is missing');
    rejects((s) => (s.root.path = ['rootfs']), 'root.path: expected a string, got ["rootfs"]');
    rejects((s) => (s.root.readonly = 'yes'), 'root.readonly: expected a boolean, got "yes"');
    accepts((s) => (s.root.path = 'some/rootfs'));
    accepts((s) => (s.root.path = '/abs/rootfs'));
  });
});

describe('validateSpec: process', () => {
  it('checks user ids', () => {
    rejects((s) => (s.process.user.uid = 'root'), 'process.user.uid: expected a non-negative integer, got "root"');
    rejects((s) => (s.process.user.gid = -1), 'process.user.gid: expected a non-negative integer, got -1');
    rejects((s) => (s.process.user.uid = 1.5), 'process.user.uid: expected a non-negative integer, got 1.5');
    rejects((s) => (s.process.user.uid = 2 ** 32), 'process.user.uid: expected an integer from 0 to 2147483647, got 4294967296');
    rejects((s) => (s.process.user.uid = 2 ** 32 - 1), /process.user.uid: expected an integer from 0 to 2147483647/);
    rejects((s) => delete s.process.user.gid, 'process.user.gid: required field is missing');
    rejects((s) => delete s.process.user, 'process.user: required field is missing');
    rejects((s) => (s.process.user.additionalGids = [1, 'wheel']), 'process.user.additionalGids[1]: expected a non-negative integer, got "wheel"');
    rejects((s) => (s.process.user.umask = '022'), 'process.user.umask: expected a non-negative integer, got "022"');
    accepts((s) => Object.assign(s.process.user, { uid: 2147483647, umask: 18, additionalGids: [1, 2], username: 'x' }));
  });

  it('requires non-empty args of strings', () => {
    rejects((s) => delete s.process.args, 'process.args: required field is missing');
    rejects((s) => (s.process.args = []), 'process.args: must not be empty');
    rejects((s) => (s.process.args = ['sh', 1]), 'process.args[1]: expected a string, got 1');
    rejects((s) => (s.process.args = 'sh'), 'process.args: expected an array, got "sh"');
  });

  it('requires an absolute cwd', () => {
    rejects((s) => delete s.process.cwd, 'process.cwd: required field is missing');
    rejects((s) => (s.process.cwd = 'home'), 'process.cwd: must be an absolute path, got "home"');
  });

  it('checks env, terminal, consoleSize, noNewPrivileges, labels', () => {
    rejects((s) => (s.process.env = ['A=1', null]), 'process.env[1]: expected a string, got null');
    rejects((s) => (s.process.terminal = 1), 'process.terminal: expected a boolean, got 1');
    rejects((s) => (s.process.consoleSize = { height: 10 }), 'process.consoleSize.width: required field is missing');
    rejects((s) => (s.process.noNewPrivileges = 'true'), 'process.noNewPrivileges: expected a boolean, got "true"');
    rejects((s) => (s.process.apparmorProfile = 1), 'process.apparmorProfile: expected a string, got 1');
    rejects((s) => (s.process.selinuxLabel = {}), 'process.selinuxLabel: expected a string, got {}');
  });

  it('bounds oomScoreAdj to -1000..1000', () => {
    accepts((s) => (s.process.oomScoreAdj = -1000));
    rejects((s) => (s.process.oomScoreAdj = 1001), 'process.oomScoreAdj: expected an integer from -1000 to 1000, got 1001');
  });

  it('checks capability lists and names', () => {
    rejects((s) => (s.process.capabilities.bounding = 'CAP_KILL'), 'process.capabilities.bounding: expected an array, got "CAP_KILL"');
    rejects((s) => (s.process.capabilities.ambient = [7]), 'process.capabilities.ambient[0]: expected a string, got 7');
    rejects((s) => (s.process.capabilities.effective = ['CAP_KILL', 'CAP_FOO']), 'process.capabilities.effective[1]: unknown capability "CAP_FOO" (see capabilities(7))');
    rejects((s) => (s.process.capabilities.permitted = ['kill']), 'process.capabilities.permitted[0]: unknown capability "kill" (write it "CAP_KILL")');
    accepts((s) => (s.process.capabilities.inheritable = ['CAP_SYS_ADMIN', 'CAP_CHECKPOINT_RESTORE']));
  });

  it('checks rlimits: known type, soft <= hard, no duplicates', () => {
    rejects((s) => (s.process.rlimits = [{ type: 'RLIMIT_FOO', soft: 1, hard: 1 }]), /^config\.json: process\.rlimits\[0\]\.type: unknown rlimit type "RLIMIT_FOO"/);
    rejects((s) => (s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 2048, hard: 1024 }]), 'process.rlimits[0]: soft limit 2048 is above hard limit 1024 for RLIMIT_NOFILE');
    rejects((s) => (s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: -1, hard: 1024 }]), 'process.rlimits[0].soft: expected a non-negative integer, got -1');
    rejects((s) => (s.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 1024 }]), 'process.rlimits[0].soft: required field is missing');
    rejects(
      (s) => (s.process.rlimits = [{ type: 'RLIMIT_CORE', soft: 0, hard: 0 }, { type: 'RLIMIT_CPU', soft: 1, hard: 1 }, { type: 'RLIMIT_CORE', soft: 1, hard: 1 }]),
      'process.rlimits[2].type: duplicate rlimit type "RLIMIT_CORE" (also at process.rlimits[0])',
    );
  });

  it('accepts RLIM_INFINITY as JSON writes it', () => {
    const out = parseSpec(JSON.stringify(base()).replace('"hard":1024', '"hard":18446744073709551615'));
    assert.equal(out.process!.rlimits![0]!.hard, 2 ** 64);
  });

  it('checks ioPriority and scheduler', () => {
    rejects((s) => (s.process.ioPriority = { class: 'RT' }), 'process.ioPriority.class: unknown I/O priority class "RT" (expected one of IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE)');
    rejects((s) => (s.process.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 8 }), 'process.ioPriority.priority: expected an integer from 0 to 7, got 8');
    rejects((s) => (s.process.scheduler = { nice: 1 }), 'process.scheduler.policy: required field is missing');
    accepts((s) => (s.process.scheduler = { policy: 'SCHED_BATCH', nice: -5, flags: ['SCHED_FLAG_RESET_ON_FORK'] }));
  });

  it('lets a spec without process through (create-only bundles are rejected later)', () => {
    accepts((s) => delete s.process);
  });
});

describe('validateSpec: mounts', () => {
  it('requires a string destination and makes relative ones absolute, like runc', () => {
    rejects((s) => delete s.mounts[2].destination, 'mounts[2].destination: required field is missing');
    rejects((s) => (s.mounts[2].destination = 5), 'mounts[2].destination: expected a string, got 5');
    const out = accepts((s) => (s.mounts[0].destination = 'data/x'));
    assert.equal(out.mounts![0]!.destination, '/data/x');
  });

  it('checks options, type, source, and id-mapped mount mappings', () => {
    rejects((s) => (s.mounts[1].options = 'ro'), 'mounts[1].options: expected an array, got "ro"');
    rejects((s) => (s.mounts[1].options = ['ro', 1]), 'mounts[1].options[1]: expected a string, got 1');
    rejects((s) => (s.mounts[1].type = false), 'mounts[1].type: expected a string, got false');
    rejects((s) => (s.mounts[1].source = 1), 'mounts[1].source: expected a string, got 1');
    rejects((s) => (s.mounts[1].uidMappings = [{ containerID: 0, hostID: 0 }]), 'mounts[1].uidMappings[0].size: required field is missing');
    rejects((s) => (s.mounts = {}), 'mounts: expected an array, got {}');
    accepts((s) => (s.mounts[1].options = ['unknown-option-checked-by-the-compiler']));
  });
});

describe('validateSpec: hooks and annotations', () => {
  it('checks hooks', () => {
    rejects((s) => (s.hooks = { prestart: [{ path: 'hook.sh' }] }), 'hooks.prestart[0].path: expected an absolute path, got "hook.sh"');
    rejects((s) => (s.hooks = { poststop: [{ args: [] }] }), 'hooks.poststop[0].path: required field is missing');
    rejects((s) => (s.hooks = { createRuntime: [{ path: '/h', timeout: 0 }] }), 'hooks.createRuntime[0].timeout: expected a positive integer, got 0');
    rejects((s) => (s.hooks = { startContainer: [{ path: '/h', timeout: 1.5 }] }), 'hooks.startContainer[0].timeout: expected a positive integer, got 1.5');
    rejects((s) => (s.hooks = { poststart: {} }), 'hooks.poststart: expected an array, got {}');
    rejects((s) => (s.hooks = { createContainer: [{ path: '/h', env: 'A=1' }] }), 'hooks.createContainer[0].env: expected an array, got "A=1"');
    accepts((s) => (s.hooks = { prestart: [{ path: '/bin/true', args: ['true'], env: ['A=1'], timeout: 5 }], unknownKind: 1 }));
  });

  it('checks annotations are strings, quoting odd keys in the path', () => {
    rejects((s) => (s.annotations = { 'org.example.count': 3 }), 'annotations["org.example.count"]: expected a string, got 3');
    rejects((s) => (s.annotations = []), 'annotations: expected an object, got []');
  });

  it('checks hostname and domainname types and their UTS namespace', () => {
    rejects((s) => (s.hostname = 1), 'hostname: expected a string, got 1');
    rejects(
      (s) => (s.linux.namespaces = s.linux.namespaces.filter((n: Json) => n.type !== 'uts')),
      'hostname: cannot set hostname "berth" without a UTS namespace (add {"type": "uts"} to linux.namespaces)',
    );
    accepts((s) => {
      s.hostname = '';
      s.linux.namespaces = s.linux.namespaces.filter((n: Json) => n.type !== 'uts');
    });
  });
});

describe('validateSpec: linux namespaces and id mappings', () => {
  it('rejects unknown and duplicate namespace types', () => {
    rejects(
      (s) => (s.linux.namespaces[2].type = 'netx'),
      'linux.namespaces[2].type: unknown namespace type "netx" (expected one of pid, network, mount, ipc, uts, user, cgroup, time)',
    );
    rejects((s) => s.linux.namespaces.push({ type: 'pid' }), 'linux.namespaces[6].type: duplicate namespace type "pid" (also at linux.namespaces[0])');
    rejects((s) => (s.linux.namespaces[0] = { path: '/proc/1/ns/pid' }), 'linux.namespaces[0].type: required field is missing');
  });

  it('requires absolute namespace paths', () => {
    rejects((s) => (s.linux.namespaces[1].path = 'ns/net'), 'linux.namespaces[1].path: expected an absolute path, got "ns/net"');
    accepts((s) => (s.linux.namespaces[1].path = '/var/run/netns/x'));
  });

  it('requires a user namespace for id mappings', () => {
    rejects(
      (s) => (s.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]),
      'linux.uidMappings: id mappings need a user namespace (add {"type": "user"} to linux.namespaces)',
    );
    rejects(
      (s) => (s.linux.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]),
      'linux.gidMappings: id mappings need a user namespace (add {"type": "user"} to linux.namespaces)',
    );
  });

  it('requires mappings when a new user namespace is created, not when one is joined', () => {
    rejects((s) => s.linux.namespaces.push({ type: 'user' }), /^config\.json: linux\.uidMappings: required when a new user namespace is created/);
    accepts((s) => s.linux.namespaces.push({ type: 'user', path: '/proc/1/ns/user' }));
  });

  it('checks mapping fields', () => {
    rejects((s) => {
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: -5, size: 1 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 0, size: 1 }];
    }, 'linux.uidMappings[0].hostID: expected a non-negative integer, got -5');
  });
});

describe('validateSpec: linux devices, sysctl, paths, misc', () => {
  it('checks devices', () => {
    rejects((s) => (s.linux.devices = [{ type: 'x', path: '/dev/x', major: 1, minor: 1 }]), 'linux.devices[0].type: unknown device type "x" (expected one of c, b, u, p)');
    rejects((s) => (s.linux.devices = [{ type: 'c', path: 'dev/null', major: 1, minor: 3 }]), 'linux.devices[0].path: expected an absolute path, got "dev/null"');
    rejects((s) => (s.linux.devices = [{ type: 'c', path: '/dev/null', minor: 3 }]), 'linux.devices[0].major: required for a device of type "c"');
    rejects((s) => (s.linux.devices = [{ type: 'b', path: '/dev/sda', major: 8 }]), 'linux.devices[0].minor: required for a device of type "b"');
    rejects((s) => (s.linux.devices = [{ type: 'c', path: '/dev/null', major: 1, minor: 3, fileMode: '0666' }]), 'linux.devices[0].fileMode: expected a non-negative integer, got "0666"');
    accepts((s) => (s.linux.devices = [{ type: 'p', path: '/dev/fifo' }, { type: 'u', path: '/dev/u', major: 1, minor: 2, uid: 0, gid: 0, fileMode: 438 }]));
  });

  it('checks sysctl values are strings', () => {
    rejects((s) => (s.linux.sysctl = { 'net.ipv4.ip_forward': 1 }), 'linux.sysctl["net.ipv4.ip_forward"]: expected a string, got 1');
    accepts((s) => (s.linux.sysctl = { 'net.ipv4.ip_forward': '1' }));
  });

  it('checks masked/readonly paths, cgroupsPath, rootfsPropagation, personality, mountLabel', () => {
    rejects((s) => (s.linux.maskedPaths = ['/proc/kcore', 3]), 'linux.maskedPaths[1]: expected a string, got 3');
    rejects((s) => (s.linux.readonlyPaths = '/proc/sys'), 'linux.readonlyPaths: expected an array, got "/proc/sys"');
    rejects((s) => (s.linux.cgroupsPath = 1), 'linux.cgroupsPath: expected a string, got 1');
    rejects((s) => (s.linux.rootfsPropagation = 'shared-ish'), /^config\.json: linux\.rootfsPropagation: unknown rootfs propagation "shared-ish" \(expected one of private, rprivate/);
    rejects((s) => (s.linux.personality = { domain: 'LINUX64' }), 'linux.personality.domain: unknown personality domain "LINUX64" (expected one of LINUX, LINUX32)');
    rejects((s) => (s.linux.mountLabel = 0), 'linux.mountLabel: expected a string, got 0');
    rejects((s) => (s.linux.timeOffsets = { monotonic: { secs: 'x' } }), 'linux.timeOffsets.monotonic.secs: expected an integer, got "x"');
    accepts((s) => {
      s.linux.cgroupsPath = 'system.slice:berth:abc';
      s.linux.rootfsPropagation = 'rslave';
      s.linux.personality = { domain: 'LINUX32' };
    });
  });

  it('reports long values shortened', () => {
    rejects((s) => (s.linux.cgroupsPath = ['x'.repeat(100)]), /got \["x{35}\.\.\.$/);
  });
});

describe('validateSpec: resources', () => {
  it('checks device cgroup rules', () => {
    rejects((s) => (s.linux.resources.devices = [{ access: 'rwm' }]), 'linux.resources.devices[0].allow: required field is missing');
    rejects((s) => (s.linux.resources.devices = [{ allow: true, access: 'rwx' }]), 'linux.resources.devices[0].access: expected a combination of "r", "w" and "m", got "rwx"');
    rejects((s) => (s.linux.resources.devices = [{ allow: true, type: 'p' }]), 'linux.resources.devices[0].type: unknown device cgroup type "p" (expected one of a, c, b)');
    const out = accepts((s) => (s.linux.resources.devices = [{ allow: true, type: 'c', major: 1, minor: null, access: 'rw' }]));
    assert.equal(out.linux!.resources!.devices![0]!.minor, null);
  });

  it('checks memory, allowing -1 for unlimited', () => {
    accepts((s) => (s.linux.resources.memory = { limit: -1, swap: -1, reservation: 1 << 20, disableOOMKiller: false }));
    rejects((s) => (s.linux.resources.memory = { limit: -2 }), 'linux.resources.memory.limit: expected an integer from -1 to 9223372036854775807, got -2');
    rejects((s) => (s.linux.resources.memory = { limit: '1g' }), 'linux.resources.memory.limit: expected an integer, got "1g"');
    rejects((s) => (s.linux.resources.memory = { swappiness: -1 }), 'linux.resources.memory.swappiness: expected a non-negative integer, got -1');
    rejects((s) => (s.linux.resources.memory = { disableOOMKiller: 1 }), 'linux.resources.memory.disableOOMKiller: expected a boolean, got 1');
  });

  it('checks cpu, pids, blockIO, hugetlb, network, rdma, unified', () => {
    accepts((s) => (s.linux.resources.cpu = { shares: 1024, quota: -1, period: 100000, cpus: '0-1', mems: '0' }));
    rejects((s) => (s.linux.resources.cpu = { shares: -1 }), 'linux.resources.cpu.shares: expected a non-negative integer, got -1');
    rejects((s) => (s.linux.resources.cpu = { cpus: [0, 1] }), 'linux.resources.cpu.cpus: expected a string, got [0,1]');
    rejects((s) => (s.linux.resources.pids = {}), 'linux.resources.pids.limit: required field is missing');
    accepts((s) => (s.linux.resources.pids = { limit: -1 }));
    rejects((s) => (s.linux.resources.blockIO = { weight: 70000 }), 'linux.resources.blockIO.weight: expected an integer from 0 to 65535, got 70000');
    rejects((s) => (s.linux.resources.blockIO = { throttleReadBpsDevice: [{ major: 8, minor: 0 }] }), 'linux.resources.blockIO.throttleReadBpsDevice[0].rate: required field is missing');
    rejects((s) => (s.linux.resources.hugepageLimits = [{ pageSize: 2048, limit: 1 }]), 'linux.resources.hugepageLimits[0].pageSize: expected a string, got 2048');
    rejects((s) => (s.linux.resources.network = { classID: -1 }), 'linux.resources.network.classID: expected a non-negative integer, got -1');
    rejects((s) => (s.linux.resources.rdma = { mlx4_0: { hcaHandles: 'x' } }), 'linux.resources.rdma.mlx4_0.hcaHandles: expected a non-negative integer, got "x"');
    rejects((s) => (s.linux.resources.unified = { 'memory.max': 1 }), 'linux.resources.unified["memory.max"]: expected a string, got 1');
  });
});

describe('validateSpec: seccomp structure', () => {
  it('checks the shape, leaving names to seccomp.ts', () => {
    rejects((s) => (s.linux.seccomp = {}), 'linux.seccomp.defaultAction: required field is missing');
    rejects((s) => (s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ERRNO' }] }), 'linux.seccomp.syscalls[0].names: required field is missing');
    rejects((s) => (s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] }), 'linux.seccomp.syscalls[0].names: must not be empty');
    rejects(
      (s) => (s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }] }),
      'linux.seccomp.syscalls[0].args[0].index: expected an integer from 0 to 5, got 6',
    );
    rejects(
      (s) => (s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 0 }] }] }),
      'linux.seccomp.syscalls[0].args[0].op: required field is missing',
    );
    rejects((s) => (s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', flags: 'SECCOMP_FILTER_FLAG_LOG' }), 'linux.seccomp.flags: expected an array, got "SECCOMP_FILTER_FLAG_LOG"');
    rejects((s) => (s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: -1 }), 'linux.seccomp.defaultErrnoRet: expected a non-negative integer, got -1');
    accepts(
      (s) =>
        (s.linux.seccomp = {
          defaultAction: 'SCMP_ACT_ERRNO',
          defaultErrnoRet: 1,
          architectures: ['SCMP_ARCH_X86_64'],
          flags: ['SECCOMP_FILTER_FLAG_LOG'],
          syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, valueTwo: 2, op: 'SCMP_CMP_MASKED_EQ' }] }],
        }),
    );
  });
});

describe('parseSpec', () => {
  it('parses and validates', () => {
    assert.deepEqual(parseSpec(JSON.stringify(defaultSpec(), null, 2)), defaultSpec());
  });

  it('reports malformed JSON with line and column', () => {
    const text = '{\n  "ociVersion": "1.2.0",\n    }\n';
    assert.throws(() => parseSpec(text), (err: unknown) => {
      assert.ok(err instanceof BerthError);
      assert.equal(err.code, 'InvalidArgument');
      assert.equal(err.message, 'config.json: invalid JSON at line 3 column 5: unexpected "}" (expected a property name in double quotes)');
      return true;
    });
  });

  it('reports truncated input at its end', () => {
    assert.throws(() => parseSpec('{"a": [1, 2', '/x/config.json'), {
      message: '/x/config.json: invalid JSON at line 1 column 12: unexpected end of input (expected "," or "]" after an array element)',
    });
    assert.throws(() => parseSpec(''), { message: 'config.json: invalid JSON at line 1 column 1: unexpected end of input (expected a value)' });
  });

  it('reports structural errors after parsing', () => {
    assert.throws(() => parseSpec('{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"cwd": "/", "args": ["sh"], "user": {"uid": "root", "gid": 0}}}'), {
      message: 'config.json: process.user.uid: expected a non-negative integer, got "root"',
    });
  });
});

describe('locateJsonError', () => {
  const cases: [string, number, string][] = [
    ['abc', 0, 'unexpected "a" (expected a value)'],
    ['{"a": tru}', 6, 'unexpected "t" (expected a value)'],
    ['{"a":1,}', 7, 'unexpected "}" (expected a property name in double quotes)'],
    ['{"a" 1}', 5, 'unexpected "1" (expected ":" after a property name)'],
    ['{"a": 1 "b": 2}', 8, 'unexpected "\\"" (expected "," or "}" after a property value)'],
    ['[1 2]', 3, 'unexpected "2" (expected "," or "]" after an array element)'],
    ['{"a": "x', 8, 'unterminated string'],
    ['{"a": "\\q"}', 7, 'bad escape "\\q" in string'],
    ['{"a": "\\u12g4"}', 7, 'bad \\u escape in string'],
    ['"a\tb"', 2, 'control character in string (escape it)'],
    ['{"a":1} x', 8, 'unexpected "x" after the end of the JSON value'],
    ['[-]', 1, 'unexpected "-" (expected a value)'],
    ['[01]', 2, 'unexpected "1" (expected "," or "]" after an array element)'],
  ];
  for (const [text, offset, reason] of cases) {
    it(`finds the error in ${JSON.stringify(text)}`, () => {
      assert.throws(() => JSON.parse(text));
      assert.deepEqual(locateJsonError(text), { offset, reason });
    });
  }
});
