import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Flags, parseCommandLine, UsageError } from './flags.js';
import { buildCreatePlan, CONTAINER_FLAGS, parseCpus, parseDevice, parseMountFlag, parsePublish, parseRestartPolicy, parseUlimit, parseVolumeFlag, RUN_ONLY_FLAGS } from './create-options.js';
import { buildUpdate } from './containers.js';
import { buildExecRequest } from './run.js';

const files: Record<string, string> = {
  '/e.env': '# comment\n\nFROM_FILE=1\nPASSED\n  INDENTED=yes\nMISSING\n',
  '/l.txt': 'team=db\n',
  '/seccomp.json': '{ "defaultAction": "SCMP_ACT_ALLOW" }',
};

function plan(argv: string[], command: 'run' | 'create' = 'run') {
  const p = parseCommandLine({ name: command, usage: '', summary: '', flags: [...CONTAINER_FLAGS, ...(command === 'run' ? RUN_ONLY_FLAGS : [])], stopAtPositional: true, minArgs: 1 }, argv);
  return buildCreatePlan(new Flags(p), p.args, {
    command,
    env: { PASSED: 'p', HOMEVAR: 'h' },
    cwd: '/work',
    readFile: (f) => {
      if (!(f in files)) throw Object.assign(new Error(`ENOENT: ${f}`), { code: 'ENOENT' });
      return files[f];
    },
  });
}

test('run -it --rm busybox sh: attach, tty, stdin, auto-remove, default network', () => {
  const p = plan(['-it', '--rm', '--name', 'web', 'busybox', 'sh']);
  assert.equal(p.name, 'web');
  assert.equal(p.pull, 'missing');
  assert.deepEqual(p.body, {
    Image: 'busybox',
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: true,
    OpenStdin: true,
    StdinOnce: true,
    Cmd: ['sh'],
    HostConfig: { NetworkMode: 'default', AutoRemove: true },
  });
});

test('run -d: nothing attached; no command keeps the image default (null)', () => {
  const p = plan(['-d', 'busybox']);
  assert.equal(p.body.AttachStdout, false);
  assert.equal(p.body.AttachStdin, false);
  assert.equal(p.body.Cmd, null);
});

test('-a picks streams; -i adds stdin as docker does', () => {
  const p = plan(['-a', 'stdout', 'busybox']);
  assert.deepEqual([p.body.AttachStdin, p.body.AttachStdout, p.body.AttachStderr], [false, true, false]);
  assert.throws(() => plan(['-a', 'stdout', '-d', 'busybox']), /Conflicting options: -a and -d/);
});

test('environment: env files first, then -e; bare names come from the caller environment', () => {
  const p = plan(['--env-file', '/e.env', '-e', 'A=1', '-e', 'HOMEVAR', '-e', 'UNSET', 'img']);
  assert.deepEqual(p.body.Env, ['FROM_FILE=1', 'PASSED=p', 'INDENTED=yes', 'A=1', 'HOMEVAR=h', 'UNSET']);
  assert.throws(() => plan(['--env-file', '/nope', 'img']), /open \/nope: no such file or directory/);
});

test('resources, security and lifecycle flags map to HostConfig', () => {
  const p = plan([
    '-m', '64m', '--memory-swap', '-1', '--cpus', '1.5', '--cpu-shares', '512', '--cpuset-cpus', '0-1', '--pids-limit', '100',
    '--cap-add', 'net_admin', '--cap-drop', 'ALL', '--privileged', '--read-only', '--security-opt', 'no-new-privileges',
    '--security-opt', 'seccomp=/seccomp.json', '--ulimit', 'nofile=1024:2048', '--sysctl', 'net.ipv4.ip_forward=1',
    '--device', '/dev/fuse', '--init', '--shm-size', '128m', '--add-host', 'db:10.0.0.2', '--dns', '1.1.1.1',
    '--restart', 'on-failure:3', '--log-opt', 'max-size=1m', '--network', 'none', '--stop-signal', 'SIGINT', '--stop-timeout', '5',
    '-h', 'box', '-w', '/app', '-u', '1000:1000', '-l', 'a=b', '--label-file', '/l.txt', '--entrypoint', '', '--platform', 'linux/amd64',
    'img', 'a', 'b',
  ]);
  const h = p.body.HostConfig!;
  assert.equal(h.Memory, 64 * 2 ** 20);
  assert.equal(h.MemorySwap, -1);
  assert.equal(h.NanoCpus, 1_500_000_000);
  assert.equal(h.CpuShares, 512);
  assert.equal(h.CpusetCpus, '0-1');
  assert.equal(h.PidsLimit, 100);
  assert.deepEqual(h.CapAdd, ['CAP_NET_ADMIN']);
  assert.deepEqual(h.CapDrop, ['ALL']);
  assert.equal(h.Privileged, true);
  assert.equal(h.ReadonlyRootfs, true);
  assert.deepEqual(h.SecurityOpt, ['no-new-privileges', 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']);
  assert.deepEqual(h.Ulimits, [{ Name: 'nofile', Soft: 1024, Hard: 2048 }]);
  assert.deepEqual(h.Sysctls, { 'net.ipv4.ip_forward': '1' });
  assert.deepEqual(h.Devices, [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }]);
  assert.equal(h.Init, true);
  assert.equal(h.ShmSize, 128 * 2 ** 20);
  assert.deepEqual(h.ExtraHosts, ['db:10.0.0.2']);
  assert.deepEqual(h.Dns, ['1.1.1.1']);
  assert.deepEqual(h.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.deepEqual(h.LogConfig, { Type: '', Config: { 'max-size': '1m' } });
  assert.equal(h.NetworkMode, 'none');
  assert.equal(p.body.StopSignal, 'SIGINT');
  assert.equal(p.body.StopTimeout, 5);
  assert.equal(p.body.Hostname, 'box');
  assert.equal(p.body.WorkingDir, '/app');
  assert.equal(p.body.User, '1000:1000');
  assert.deepEqual(p.body.Labels, { team: 'db', a: 'b' });
  assert.deepEqual(p.body.Entrypoint, ['']);
  assert.deepEqual(p.body.Cmd, ['a', 'b']);
  assert.equal(p.platform, 'linux/amd64');
});

test('volumes: binds, named volumes, anonymous volumes, relative sources, --mount and --tmpfs', () => {
  const p = plan(['-v', '/data:/data:ro', '-v', 'vol:/v', '-v', '/anon', '-v', './rel:/r', '--mount', 'type=bind,src=/h,dst=/c,readonly', '--mount', 'type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777', '--tmpfs', '/run:size=64k', 'img']);
  assert.deepEqual(p.body.HostConfig!.Binds, ['/data:/data:ro', 'vol:/v', '/work/rel:/r']);
  assert.deepEqual(p.body.Volumes, { '/anon': {} });
  assert.deepEqual(p.body.HostConfig!.Mounts, [
    { Type: 'bind', Source: '/h', Target: '/c', ReadOnly: true },
    { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 2 ** 20, Mode: 0o1777 } },
  ]);
  assert.deepEqual(p.body.HostConfig!.Tmpfs, { '/run': 'size=64k' });
  assert.throws(() => parseVolumeFlag('rel', '/', 'run'), /mount path must be absolute/);
  assert.throws(() => parseMountFlag('type=bind,target=/x', '/', 'run'), /source is required/);
  assert.throws(() => parseMountFlag('type=weird,target=/x', '/', 'run'), /invalid mount type/);
});

test('health check flags', () => {
  const p = plan(['--health-cmd', 'true', '--health-interval', '1s', '--health-timeout', '500ms', '--health-retries', '3', '--health-start-period', '1m', 'img']);
  assert.deepEqual(p.body.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 1e9, Timeout: 5e8, StartPeriod: 60e9, StartInterval: 0, Retries: 3 });
  assert.deepEqual(plan(['--no-healthcheck', 'img']).body.Healthcheck, { Test: ['NONE'] });
  assert.throws(() => plan(['--no-healthcheck', '--health-cmd', 'x', 'img']), /conflicts with --health-\* options/);
  assert.throws(() => plan(['--health-interval', 'soon', 'img']), /invalid duration/);
});

test('ports are passed through (-p, -P, --expose)', () => {
  const p = plan(['-p', '8080:80', '-p', '127.0.0.1:53:53/udp', '-p', '9000', '-P', '--expose', '7000-7001', 'img']);
  assert.deepEqual(p.body.ExposedPorts, { '80/tcp': {}, '53/udp': {}, '9000/tcp': {}, '7000/tcp': {}, '7001/tcp': {} });
  assert.deepEqual(p.body.HostConfig!.PortBindings, {
    '80/tcp': [{ HostIp: '', HostPort: '8080' }],
    '53/udp': [{ HostIp: '127.0.0.1', HostPort: '53' }],
    '9000/tcp': [{ HostIp: '', HostPort: '' }],
  });
  assert.equal(p.body.HostConfig!.PublishAllPorts, true);
  assert.deepEqual(parsePublish('8000-8001:80-81', 'run').bindings, { '80/tcp': [{ HostIp: '', HostPort: '8000' }], '81/tcp': [{ HostIp: '', HostPort: '8001' }] });
});

test('small value parsers refuse what docker refuses', () => {
  assert.deepEqual(parseRestartPolicy('always', 'run'), { Name: 'always', MaximumRetryCount: 0 });
  assert.throws(() => parseRestartPolicy('always:3', 'run'), /only be used with 'on-failure'/);
  assert.throws(() => parseRestartPolicy('sometimes', 'run'), UsageError);
  assert.throws(() => plan(['--rm', '--restart', 'always', 'img']), /Conflicting options: --restart and --rm/);
  assert.deepEqual(parseUlimit('nproc=10', 'run'), { Name: 'nproc', Soft: 10, Hard: 10 });
  assert.throws(() => parseUlimit('nofile=10:5', 'run'), /soft limit must be less than or equal to hard limit/);
  assert.deepEqual(parseDevice('/dev/sda:/dev/xvda:r', 'run'), { PathOnHost: '/dev/sda', PathInContainer: '/dev/xvda', CgroupPermissions: 'r' });
  assert.deepEqual(parseDevice('/dev/sda:rw', 'run'), { PathOnHost: '/dev/sda', PathInContainer: '/dev/sda', CgroupPermissions: 'rw' });
  assert.equal(parseCpus('0.000000001', 'run'), 1);
  assert.equal(parseCpus('2', 'run'), 2e9);
  assert.throws(() => parseCpus('0.0000000001', 'run'), /too precise/);
  assert.throws(() => plan(['-w', 'rel', 'img']), /needs to be an absolute path/);
  assert.throws(() => plan(['--pull', 'sometimes', 'img']), /invalid pull option/);
});

test('update flags → the update body; exec flags → the exec body', () => {
  const u = parseCommandLine({ name: 'update', usage: '', summary: '', flags: [
    { long: 'memory', short: 'm', kind: 'string', help: '' },
    { long: 'cpus', kind: 'string', help: '' },
    { long: 'pids-limit', kind: 'int', help: '' },
    { long: 'restart', kind: 'string', help: '' },
  ] }, ['-m', '1g', '--cpus', '0.5', '--pids-limit', '20', '--restart', 'unless-stopped', 'c1']);
  assert.deepEqual(buildUpdate(new Flags(u)), { Memory: 2 ** 30, NanoCpus: 5e8, PidsLimit: 20, RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 } });

  const e = parseCommandLine({ name: 'exec', usage: '', summary: '', stopAtPositional: true, flags: [
    { long: 'interactive', short: 'i', kind: 'bool', help: '' },
    { long: 'tty', short: 't', kind: 'bool', help: '' },
    { long: 'env', short: 'e', kind: 'list', help: '' },
    { long: 'workdir', short: 'w', kind: 'string', help: '' },
    { long: 'user', short: 'u', kind: 'string', help: '' },
  ] }, ['-it', '-e', 'A=1', '-w', '/tmp', '-u', 'nobody', 'c1', 'sh']);
  assert.deepEqual(buildExecRequest(new Flags(e), ['sh'], { env: {}, readFile: () => '', consoleSize: [24, 80] }), {
    User: 'nobody',
    Privileged: false,
    Tty: true,
    AttachStdin: true,
    AttachStderr: true,
    AttachStdout: true,
    Detach: false,
    Env: ['A=1'],
    WorkingDir: '/tmp',
    Cmd: ['sh'],
    ConsoleSize: [24, 80],
  });
});

test('networks: --network with --ip/--ip6/--network-alias/--mac-address as EndpointsConfig; -p, -P; --link refused', () => {
  const p = plan(['--network', 'front', '--ip', '10.80.0.9', '--ip6', 'fd00::9', '--network-alias', 'www', '--net-alias', 'w2', '--mac-address', '02:42:ac:11:00:09', '-p', '127.0.0.1:8080-8081:80-81/udp', '-P', 'img']);
  assert.deepEqual(p.body.NetworkingConfig, { EndpointsConfig: { front: { Aliases: ['www', 'w2'], IPAMConfig: { IPv4Address: '10.80.0.9', IPv6Address: 'fd00::9' }, MacAddress: '02:42:ac:11:00:09' } } });
  assert.equal(p.body.HostConfig!.NetworkMode, 'front');
  assert.deepEqual(p.body.HostConfig!.PortBindings, { '80/udp': [{ HostIp: '127.0.0.1', HostPort: '8080' }], '81/udp': [{ HostIp: '127.0.0.1', HostPort: '8081' }] });
  assert.equal(p.body.HostConfig!.PublishAllPorts, true);
  assert.equal(p.body.MacAddress, undefined);
  assert.deepEqual(plan(['--mac-address', '02:42:ac:11:00:09', 'img']).body.NetworkingConfig, { EndpointsConfig: { default: { MacAddress: '02:42:ac:11:00:09' } } });
  assert.throws(() => plan(['--ip', '10.80.0.9', 'img']), /need a user-defined network/);
  assert.throws(() => plan(['--network', 'host', '--network-alias', 'x', 'img']), /do not apply to --network host/);
  assert.throws(() => plan(['--network', 'n', '--ip', '10.80.0', 'img']), /invalid IPv4 address/);
  assert.throws(() => plan(['--link', 'db:db', 'img']), /--link: legacy links are not supported/);
});
