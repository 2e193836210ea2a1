import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../errors.js';
import { CLONE_FLAGS, compileCreate, compileExec, effectiveDeviceRules, type CompileOptions } from './compile.js';
import { MS } from './mounts.js';
import { MountFlag, Op, decodePlan, encodePlan, type Plan } from './plan.js';
import type { Spec } from './spec.js';

const host = { lastCap: 40, rlimitHard: () => 20000 as const };

function baseSpec(edit?: (s: Spec) => void): Spec {
  const s: Spec = {
    ociVersion: '1.2.0',
    process: { user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/', env: ['PATH=/bin'] },
    root: { path: 'rootfs' },
    hostname: 'box',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance'] },
    ],
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'uts' }, { type: 'ipc' }, { type: 'network' }] },
  };
  edit?.(s);
  return s;
}

function compile(spec: Spec, extra: Partial<CompileOptions> = {}) {
  return compileCreate({ id: 'c1', spec, bundle: '/b', host, ...extra });
}

const ops = (plan: Plan, code: number) => plan.filter((o) => o.op === code);
const index = (plan: Plan, code: number) => plan.findIndex((o) => o.op === code);

function throwsField(fn: () => unknown, field: RegExp) {
  assert.throws(fn, (err: unknown) => err instanceof BerthError && field.test(err.message));
}

test('parent joins cgroups, clones with the new namespaces, the child ends with exec', () => {
  const { plan, rootfs } = compile(baseSpec(), { cgroupDirs: ['/sys/fs/cgroup/x'] });
  assert.equal(rootfs, '/b/rootfs');
  assert.deepEqual(plan[0], { op: Op.CGROUP_JOIN, args: ['/sys/fs/cgroup/x'] });
  const clone = ops(plan, Op.CLONE)[0];
  const want = CLONE_FLAGS.pid | CLONE_FLAGS.mount | CLONE_FLAGS.uts | CLONE_FLAGS.ipc | CLONE_FLAGS.network;
  assert.equal(clone.args[0], want);
  assert.ok(index(plan, Op.CLONE) < index(plan, Op.CHILD));
  assert.equal(plan.at(-1)!.op, Op.EXEC);
  assert.deepEqual(plan.at(-1)!.args, ['', 1, 'sh', 'PATH=/bin']);
  assert.ok(index(plan, Op.PIVOT_ROOT) > index(plan, Op.MOUNT));
  assert.deepEqual(ops(plan, Op.HOSTNAME)[0].args, ['box']);
  // the plan survives the wire format
  assert.equal(decodePlan(encodePlan(plan)).length, plan.length);
});

test('create/start split: fifo made by the parent, opened before pivot, waited on after', () => {
  const { plan } = compile(baseSpec(), { fifoPath: '/run/x/c1/exec.fifo' });
  assert.deepEqual(ops(plan, Op.MKFIFO)[0].args, ['/run/x/c1/exec.fifo', 0o622]);
  assert.ok(index(plan, Op.MKFIFO) < index(plan, Op.CLONE));
  assert.ok(index(plan, Op.FIFO_OPEN) < index(plan, Op.CLONE), 'opened by the parent');
  assert.ok(index(plan, Op.WAIT_START) > index(plan, Op.PIVOT_ROOT));
  assert.ok(index(plan, Op.WAIT_START) < index(plan, Op.EXEC));
  const { plan: run } = compile(baseSpec());
  assert.equal(index(run, Op.WAIT_START), -1);
});

test('joined namespaces: user first, mount last, absolute paths only', () => {
  const spec = baseSpec((s) => {
    s.linux!.namespaces = [{ type: 'mount', path: '/proc/9/ns/mnt' }, { type: 'network', path: '/run/netns/x' }, { type: 'pid' }, { type: 'uts' }];
  });
  const { plan } = compile(spec);
  const setns = ops(plan, Op.SETNS).map((o) => o.args[0]);
  assert.deepEqual(setns, ['/run/netns/x', '/proc/9/ns/mnt']);
  assert.equal(ops(plan, Op.CLONE)[0].args[0], CLONE_FLAGS.pid | CLONE_FLAGS.uts);
  const bad = baseSpec((s) => {
    s.linux!.namespaces!.push({ type: 'cgroup', path: 'relative/ns' });
  });
  throwsField(() => compile(bad), /must be absolute/);
});

test('user namespace: maps written by the parent, devices bound instead of made', () => {
  const spec = baseSpec((s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  });
  const { plan } = compile(spec);
  assert.deepEqual(ops(plan, Op.UIDMAP)[0].args, ['0 100000 65536\n']);
  assert.ok(index(plan, Op.GIDMAP) < index(plan, Op.CHILD));
  assert.deepEqual(plan[index(plan, Op.CHILD) + 1], { op: Op.USER, args: [0, 0, -1] }, 'root of the user namespace first');
  assert.equal(ops(plan, Op.MKNOD).length, 0);
  assert.ok(ops(plan, Op.BIND_DEVICE).some((o) => o.args[1] === '/dev/null'));
  const noMaps = baseSpec((s) => s.linux!.namespaces!.push({ type: 'user' }));
  throwsField(() => compile(noMaps), /uidMappings/);
  const mapsNoNs = baseSpec((s) => {
    s.linux!.uidMappings = [{ containerID: 0, hostID: 1, size: 1 }];
  });
  throwsField(() => compile(mapsNoNs), /need a new user namespace/);
});

test('mounts: bind with flags is one op with remount; propagation is its own op', () => {
  const spec = baseSpec((s) => {
    s.mounts!.push({ destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'ro', 'nosuid', 'rshared'] });
    s.mounts!.push({ destination: 'tmp', type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'mode=1777'] });
  });
  const { plan } = compile(spec);
  const mounts = ops(plan, Op.MOUNT);
  const bind = mounts.find((o) => o.args[1] === '/data')!;
  assert.equal(bind.args[0], '/b/data');
  assert.equal(bind.args[3], MS.BIND | MS.REC | MS.RDONLY | MS.NOSUID);
  assert.equal(Number(bind.args[5]) & MountFlag.BIND_REMOUNT, MountFlag.BIND_REMOUNT);
  const prop = mounts.find((o) => o.args[1] === '/data' && Number(o.args[5]) & MountFlag.PROPAGATION)!;
  assert.equal(prop.args[3], MS.SHARED | MS.REC);
  const tmp = mounts.find((o) => o.args[1] === '/tmp')!;
  assert.equal(tmp.args[4], 'size=1m,mode=1777');
  throwsField(() => compile(baseSpec((s) => s.mounts!.push({ destination: '/x', type: 'bind' }))), /needs a source/);
  throwsField(() => compile(baseSpec((s) => s.mounts!.push({ destination: '/x', options: ['ro'] }))), /needs a type/);
});

test('root propagation, readonly root and --no-pivot', () => {
  const { plan } = compile(baseSpec((s) => {
    s.linux!.rootfsPropagation = 'private';
    s.root!.readonly = true;
  }), { noPivot: true });
  const rootProps = plan.filter((o) => o.op === Op.MOUNT && o.args[1] === '/').map((o) => o.args[3]);
  assert.deepEqual(rootProps, [MS.PRIVATE, MS.PRIVATE]);
  const shared = compile(baseSpec((s) => (s.linux!.rootfsPropagation = 'rshared'))).plan;
  const sharedProps = shared.filter((o) => o.op === Op.MOUNT && o.args[1] === '/');
  assert.equal(sharedProps[0].args[3], MS.SLAVE | MS.REC, 'slave until pivot_root');
  assert.equal(sharedProps[1].args[3], MS.SHARED | MS.REC);
  assert.ok(shared.indexOf(sharedProps[1]) > index(shared, Op.PIVOT_ROOT));
  assert.equal(index(plan, Op.PIVOT_ROOT), -1);
  assert.ok(index(plan, Op.MOVE_ROOT) > 0);
  assert.deepEqual(ops(plan, Op.REMOUNT_RO)[0].args, ['/']);
  throwsField(() => compile(baseSpec((s) => (s.linux!.rootfsPropagation = 'sideways'))), /unknown propagation/);
});

test('sysctls must belong to a namespace the container has', () => {
  const ok = compile(baseSpec((s) => (s.linux!.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000' })));
  assert.equal(ops(ok.plan, Op.SYSCTL).length, 2);
  throwsField(() => compile(baseSpec((s) => (s.linux!.sysctl = { 'vm.swappiness': '1' }))), /not namespaced/);
  throwsField(
    () => compile(baseSpec((s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network');
      s.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
    })),
    /needs a network namespace/,
  );
});

test('hostname needs a uts namespace', () => {
  throwsField(() => compile(baseSpec((s) => (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'uts')))), /hostname/);
});

test('rlimits above the host hard limit are clamped with a warning', () => {
  const { plan, warnings } = compile(baseSpec((s) => (s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }])));
  assert.deepEqual(ops(plan, Op.RLIMIT)[0].args, [7, 20000, 20000]);
  assert.match(warnings.join('\n'), /RLIMIT_NOFILE/);
});

test('capabilities: masks per set, ambient only where permitted and inheritable', () => {
  const { plan } = compile(baseSpec((s) => {
    s.process!.capabilities = {
      bounding: ['CAP_CHOWN', 'CAP_KILL'],
      effective: ['CAP_KILL'],
      permitted: ['CAP_CHOWN', 'CAP_KILL'],
      inheritable: ['CAP_KILL'],
      ambient: ['CAP_KILL', 'CAP_CHOWN'],
    };
  }));
  const caps = ops(plan, Op.CAPS)[0].args;
  assert.deepEqual(caps, [(1n << 0n) | (1n << 5n), 1n << 5n, (1n << 0n) | (1n << 5n), 1n << 5n, 1n << 5n]);
  throwsField(() => compile(baseSpec((s) => (s.process!.capabilities = { bounding: ['CAP_NOPE'] }))), /capabilities\.bounding/);
});

test('seccomp loads before the user switch without no_new_privs, last with it', () => {
  const seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
  const without = compile(baseSpec((s) => (s.linux!.seccomp = seccomp))).plan;
  assert.ok(index(without, Op.SECCOMP_LOAD) < index(without, Op.USER));
  const withNnp = compile(baseSpec((s) => {
    s.linux!.seccomp = seccomp;
    s.process!.noNewPrivileges = true;
  })).plan;
  assert.ok(index(withNnp, Op.SECCOMP_LOAD) > index(withNnp, Op.CAPS));
  assert.ok(index(withNnp, Op.NO_NEW_PRIVS) < index(withNnp, Op.SECCOMP_LOAD));
});

test('terminal: console socket in the parent, console after pivot; none given is an error unless foreground', () => {
  const spec = baseSpec((s) => (s.process!.terminal = true));
  const { plan } = compile(spec, { consoleSocket: '/tmp/sock' });
  assert.ok(index(plan, Op.CONSOLE_SOCKET) < index(plan, Op.CLONE));
  const joined = compile(baseSpec((x) => {
    x.process!.terminal = true;
    x.linux!.namespaces = [{ type: 'mount', path: '/proc/1/ns/mnt' }, { type: 'uts' }];
  }), { consoleSocket: '/tmp/sock' }).plan;
  assert.ok(index(joined, Op.CONSOLE_SOCKET) < index(joined, Op.SETNS), 'connect before joining a mount namespace');
  const withFifo = compile(baseSpec((x) => (x.linux!.namespaces = [{ type: 'mount', path: '/proc/1/ns/mnt' }, { type: 'uts' }])), { fifoPath: '/f' }).plan;
  assert.ok(index(withFifo, Op.FIFO_OPEN) < index(withFifo, Op.SETNS), 'the fifo is made and opened before joining');
  assert.ok(index(plan, Op.CONSOLE) > index(plan, Op.PIVOT_ROOT));
  throwsField(() => compile(spec), /console-socket/);
  assert.equal(ops(compile(spec, { foreground: true }).plan, Op.CONSOLE_SOCKET).length, 0);
});

test('hooks: a sync point for host hooks, createContainer before pivot, startContainer after start', () => {
  const hook = { path: '/bin/hook', args: ['hook', 'x'], env: ['A=1'], timeout: 5 };
  const { plan } = compile(baseSpec((s) => (s.hooks = { createRuntime: [hook], createContainer: [hook], startContainer: [hook] })), { fifoPath: '/f' });
  const hooks = ops(plan, Op.HOOK);
  assert.equal(hooks.length, 2);
  assert.deepEqual(hooks[0].args, ['/bin/hook', 5, 2, 'hook', 'x', 'A=1']);
  const sync = index(plan, Op.SYNC);
  assert.ok(sync > 0 && sync < plan.indexOf(hooks[0]));
  assert.ok(plan.indexOf(hooks[0]) < index(plan, Op.PIVOT_ROOT));
  assert.ok(plan.indexOf(hooks[1]) > index(plan, Op.WAIT_START));
  assert.ok(index(plan, Op.WAIT_START) > index(plan, Op.CAPS), 'start is awaited as the final user, after everything that can fail');
  assert.ok(plan.indexOf(hooks[1]) > index(plan, Op.USER), 'startContainer hooks run unprivileged like the process');
  assert.equal(index(compile(baseSpec()).plan, Op.SYNC), -1);
});

test('devices: defaults plus linux.devices, mknod with type bits; cgroup rules allow them', () => {
  const spec = baseSpec((s) => {
    s.linux!.devices = [{ type: 'c', path: '/dev/fuse', major: 10, minor: 229, fileMode: 0o600 }];
    s.linux!.resources = { devices: [{ allow: false, access: 'rwm' }] };
  });
  const { plan } = compile(spec);
  const fuse = ops(plan, Op.MKNOD).find((o) => o.args[0] === '/dev/fuse')!;
  assert.deepEqual(fuse.args, ['/dev/fuse', 0o020600, 10, 229, 0, 0]);
  assert.ok(ops(plan, Op.MKNOD).some((o) => o.args[0] === '/dev/null'));
  const rules = effectiveDeviceRules(spec);
  assert.deepEqual(rules[0], { allow: false, access: 'rwm' });
  assert.ok(!rules.some((r) => r.major === 10 && r.minor === 229), 'listed nodes are not allowed implicitly');
  assert.ok(rules.some((r) => r.allow && r.major === 1 && r.minor === 3));
  throwsField(() => compile(baseSpec((s) => (s.linux!.devices = [{ type: 'x', path: '/dev/x' }]))), /unknown device type/);
});

test('exec plan joins the given namespaces and forks without new ones', () => {
  const spec = baseSpec();
  const { plan } = compileExec({
    spec,
    process: { user: { uid: 1000, gid: 1000, additionalGids: [5] }, args: ['id'], cwd: '/tmp', terminal: false },
    namespaces: [{ type: 'mount', path: '/proc/42/ns/mnt' }, { type: 'user', path: '/proc/42/ns/user' }],
    cgroupDirs: ['/sys/fs/cgroup/x'],
    foreground: true,
    host,
  });
  assert.deepEqual(ops(plan, Op.SETNS).map((o) => o.args[0]), ['/proc/42/ns/user', '/proc/42/ns/mnt']);
  assert.deepEqual(ops(plan, Op.CLONE)[0].args, [0]);
  assert.ok(index(plan, Op.FOREGROUND) > 0);
  assert.deepEqual(ops(plan, Op.USER)[0].args, [1000, 1000, 1, 5]);
  assert.deepEqual(ops(plan, Op.CHDIR)[0].args, ['/tmp']);
});

test("capabilities outside berth's own bounding set are left out with a warning", () => {
  const { plan, warnings } = compileCreate({
    id: 'c1',
    bundle: '/b',
    host: { ...host, boundingSet: ~(1n << 24n) },
    spec: baseSpec((s) => (s.process!.capabilities = { bounding: ['CAP_SYS_RESOURCE', 'CAP_KILL'], permitted: ['CAP_SYS_RESOURCE'] })),
  });
  const caps = ops(plan, Op.CAPS)[0].args;
  assert.equal(caps[0], 1n << 5n);
  assert.equal(caps[2], 0n);
  assert.match(warnings.join('\n'), /CAP_SYS_RESOURCE left out/);
});

test('personality, I/O priority, scheduler and cpu affinity become ops before the user switch', () => {
  const { plan } = compile(baseSpec((s) => {
    s.linux!.personality = { domain: 'LINUX32' };
    s.process!.ioPriority = { class: 'IOPRIO_CLASS_IDLE', priority: 7 };
    s.process!.scheduler = { policy: 'SCHED_BATCH', nice: 5, flags: ['SCHED_FLAG_RESET_ON_FORK'] };
    s.process!.execCPUAffinity = { final: '0-1,3' };
  }));
  assert.deepEqual(ops(plan, Op.PERSONALITY)[0].args, [8]);
  assert.deepEqual(ops(plan, Op.IOPRIO)[0].args, [3, 7]);
  assert.deepEqual(ops(plan, Op.SCHEDULER)[0].args, [3, 5, 0, 1, 0, 0, 0]);
  assert.deepEqual(ops(plan, Op.CPU_AFFINITY)[0].args, [3, 0, 1, 3]);
  assert.ok(index(plan, Op.SCHEDULER) < index(plan, Op.USER));
  throwsField(() => compile(baseSpec((s) => (s.process!.execCPUAffinity = { final: '3-1' }))), /execCPUAffinity\.final/);
  throwsField(() => compile(baseSpec((s) => (s.linux!.timeOffsets = { monotonic: { secs: 1 } }))), /timeOffsets/);
});
