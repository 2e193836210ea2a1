import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePodManifests } from './manifest.js';
import { planPod, resolveContainerRequest, expandKubeVars, milliCpuToShares, type KubePodPlan } from './plan.js';

function planOf(yaml: string): KubePodPlan {
  return planPod(parsePodManifests(yaml)[0]!.pod);
}
const head = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\n  annotations: {team: a}\n';
const ctx = { podIP: '10.89.0.5', volumeSources: {} };

test('command/args semantics: command replaces ENTRYPOINT (and CMD), args replace CMD', () => {
  const rows: [string, string[] | undefined, string[] | undefined][] = [
    ['{}', undefined, undefined],
    ['{command: [sh, -c]}', ['sh', '-c'], undefined],
    ['{args: [echo, hi]}', undefined, ['echo', 'hi']],
    ['{command: [sh, -c], args: [echo hi]}', ['sh', '-c'], ['echo hi']],
    ['{command: [], args: []}', undefined, undefined],
  ];
  for (const [fields, entrypoint, cmd] of rows) {
    const extra = fields === '{}' ? '' : `, ${fields.slice(1, -1)}`;
    const plan = planOf(`${head}spec:\n  containers:\n  - {name: a, image: busybox${extra}}\n`);
    const req = plan.containers[0]!.request;
    assert.deepEqual(req.Entrypoint, entrypoint, fields);
    assert.deepEqual(req.Cmd, cmd, fields);
  }
});

test('pod identity, namespaces, ports, restart policy, stop timeout', () => {
  const plan = planOf(`${head}spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 7
  containers:
  - name: srv
    image: busybox:1.36
    ports: [{containerPort: 80, hostPort: 8080, hostIP: 127.0.0.1}, {containerPort: 9000}, {containerPort: 53, hostPort: 5353, protocol: UDP}]
  initContainers:
  - {name: setup, image: busybox}
`);
  assert.equal(plan.name, 'web');
  assert.equal(plan.hostname, 'web');
  assert.deepEqual(plan.labels, { app: 'web' });
  assert.deepEqual(plan.annotations, { team: 'a' });
  assert.deepEqual(plan.sharedNamespaces, ['net', 'ipc', 'uts']);
  assert.deepEqual(plan.ports, [
    { container: 'srv', containerPort: 80, hostPort: 8080, hostIP: '127.0.0.1', protocol: 'TCP' },
    { container: 'srv', containerPort: 53, hostPort: 5353, hostIP: '', protocol: 'UDP' },
  ]);
  assert.equal(plan.restartPolicy, 'OnFailure');
  assert.equal(plan.stopTimeoutSeconds, 7);
  const [init] = plan.initContainers;
  const [srv] = plan.containers;
  assert.equal(init!.init, true);
  assert.deepEqual(init!.request.HostConfig!.RestartPolicy, { Name: 'no' });
  assert.equal(init!.request.Labels!['io.berth.kube.init'], 'true');
  assert.deepEqual(srv!.request.HostConfig!.RestartPolicy, { Name: 'on-failure' });
  assert.equal(srv!.request.StopTimeout, 7);
  assert.equal(srv!.containerName, 'web-srv');
  assert.equal(srv!.pullPolicy, 'IfNotPresent');
  assert.equal(init!.pullPolicy, 'Always');
  assert.deepEqual(srv!.request.ExposedPorts, { '80/tcp': {}, '9000/tcp': {}, '53/udp': {} });
  assert.deepEqual(srv!.request.Labels, { 'io.kubernetes.pod.name': 'web', 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.container.name': 'srv' });
});

test('shareProcessNamespace adds pid; hostNetwork keeps net and uts on the host and publishes nothing', () => {
  const a = planOf(`${head}spec:\n  shareProcessNamespace: true\n  hostname: box\n  containers: [{name: a, image: b}]\n`);
  assert.deepEqual(a.sharedNamespaces, ['net', 'ipc', 'uts', 'pid']);
  assert.equal(a.hostname, 'box');
  assert.equal(a.containers[0]!.request.Hostname, 'box');
  const b = planOf(`${head}spec:\n  hostNetwork: true\n  containers: [{name: a, image: b, ports: [{containerPort: 80, hostPort: 80}]}]\n`);
  assert.deepEqual(b.sharedNamespaces, ['ipc']);
  assert.equal(b.hostNetwork, true);
  assert.deepEqual(b.ports, []);
  assert.equal(planOf(`${head}spec:\n  restartPolicy: Never\n  containers: [{name: a, image: b}]\n`).containers[0]!.request.HostConfig!.RestartPolicy!.Name, 'no');
});

test('cpu shares follow Kubernetes MilliCPUToShares', () => {
  assert.equal(milliCpuToShares(1000), 1024);
  assert.equal(milliCpuToShares(500), 512);
  assert.equal(milliCpuToShares(100), 102);
  assert.equal(milliCpuToShares(1), 2);
  assert.equal(milliCpuToShares(0), 2);
});

test('container and pod cgroup limits: pod = max(largest init, sum of the others)', () => {
  const plan = planOf(`${head}spec:
  initContainers:
  - {name: i, image: b, resources: {limits: {cpu: "2", memory: 64Mi}}}
  containers:
  - {name: a, image: b, resources: {limits: {cpu: 500m, memory: 128Mi}, requests: {cpu: 250m}}}
  - {name: c, image: b, resources: {limits: {cpu: "0.5", memory: 1e8}}}
`);
  const a = plan.containers[0]!.request.HostConfig!;
  assert.equal(a.Memory, 128 * 2 ** 20);
  assert.equal(a.NanoCpus, 500_000_000);
  assert.equal(a.CpuShares, 256);
  assert.equal(plan.containers[1]!.request.HostConfig!.CpuShares, 512);
  assert.deepEqual(plan.cgroup, { memoryBytes: 128 * 2 ** 20 + 1e8, nanoCpus: 2_000_000_000, cpuShares: 2048 });
  const unlimited = planOf(`${head}spec:\n  containers:\n  - {name: a, image: b, resources: {limits: {memory: 64Mi}}}\n  - {name: c, image: b}\n`);
  assert.deepEqual(unlimited.cgroup, {});
  assert.equal(unlimited.containers[1]!.request.HostConfig!.CpuShares, undefined);
});

test('security context maps to User, Privileged, ReadonlyRootfs, caps, no-new-privileges, GroupAdd', () => {
  const plan = planOf(`${head}spec:
  securityContext: {runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000], sysctls: [{name: net.core.somaxconn, value: "1024"}]}
  containers:
  - name: a
    image: b
    securityContext: {runAsUser: 2000, privileged: true, readOnlyRootFilesystem: true, capabilities: {add: [NET_ADMIN], drop: [ALL]}}
  - name: c
    image: b
    securityContext: {allowPrivilegeEscalation: false, runAsNonRoot: true}
  - name: d
    image: b
    securityContext: {runAsNonRoot: true}
`);
  const [a, c] = plan.containers;
  assert.equal(a!.request.User, '2000:3000');
  assert.equal(a!.request.HostConfig!.Privileged, true);
  assert.equal(a!.request.HostConfig!.ReadonlyRootfs, true);
  assert.deepEqual(a!.request.HostConfig!.CapAdd, ['NET_ADMIN']);
  assert.deepEqual(a!.request.HostConfig!.CapDrop, ['ALL']);
  assert.deepEqual(a!.request.HostConfig!.GroupAdd, ['4000']);
  assert.equal(c!.request.User, '1000:3000');
  assert.deepEqual(c!.request.HostConfig!.SecurityOpt, ['no-new-privileges']);
  assert.equal(c!.requireNonRoot, false);
  assert.deepEqual(plan.sysctls, { 'net.core.somaxconn': '1024' });
  const alone = planOf(`${head}spec:\n  containers: [{name: a, image: b, securityContext: {runAsNonRoot: true}}]\n`);
  assert.equal(alone.containers[0]!.requireNonRoot, true);
  assert.equal(alone.containers[0]!.request.User, undefined);
});

test('env: literal values, fieldRefs resolved at run time, $(VAR) expansion in env, command and args', () => {
  const plan = planOf(`${head}  namespace: shop
spec:
  containers:
  - name: a
    image: b
    command: [sh, -c, 'echo $(GREETING) $$(NOT) $(MISSING)']
    args: ['$(POD_IP)']
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: TEAM, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['team']"}}}
    - {name: GREETING, value: 'hi $(POD_NAME) from $(LATER)'}
    - {name: LATER, value: x}
`);
  const c = plan.containers[0]!;
  assert.equal(c.request.Env, undefined);
  const req = resolveContainerRequest(plan, c, ctx);
  assert.deepEqual(req.Env, ['POD_NAME=web', 'NS=shop', 'POD_IP=10.89.0.5', 'APP=web', 'TEAM=a', 'GREETING=hi web from $(LATER)', 'LATER=x']);
  assert.deepEqual(req.Entrypoint, ['sh', '-c', 'echo hi web from $(LATER) $(NOT) $(MISSING)']);
  assert.deepEqual(req.Cmd, ['10.89.0.5']);
  assert.deepEqual(c.request.Entrypoint, ['sh', '-c', 'echo $(GREETING) $$(NOT) $(MISSING)'], 'the plan itself is not changed');
  assert.deepEqual(resolveContainerRequest(plan, c, { volumeSources: {} }).Env![2], 'POD_IP=');
});

test('expandKubeVars edge cases', () => {
  const look = (n: string): string | undefined => ({ A: '1' })[n];
  assert.equal(expandKubeVars('$(A)$(A)', look), '11');
  assert.equal(expandKubeVars('$$(A)', look), '$(A)');
  assert.equal(expandKubeVars('$A $(B) $(A', look), '$A $(B) $(A');
  assert.equal(expandKubeVars('cost: 5$', look), 'cost: 5$');
});

test('volumes: emptyDir on disk or in memory, hostPath binds, subPath, readOnly', () => {
  const plan = planOf(`${head}spec:
  volumes:
  - {name: cache, emptyDir: {}}
  - {name: shm, emptyDir: {medium: Memory, sizeLimit: 64Mi}}
  - {name: logs, hostPath: {path: /var/log/app, type: DirectoryOrCreate}}
  containers:
  - name: a
    image: b
    volumeMounts:
    - {name: cache, mountPath: /cache}
    - {name: shm, mountPath: /dev/shm/app, subPath: a}
    - {name: logs, mountPath: /logs, readOnly: true}
`);
  assert.deepEqual(plan.volumes, [
    { name: 'cache', kind: 'emptyDir', medium: 'disk' },
    { name: 'shm', kind: 'emptyDir', medium: 'memory', sizeBytes: 64 * 2 ** 20 },
    { name: 'logs', kind: 'hostPath', path: '/var/log/app', type: 'DirectoryOrCreate' },
  ]);
  const c = plan.containers[0]!;
  assert.deepEqual(c.mounts[1], { volume: 'shm', target: '/dev/shm/app', readOnly: false, subPath: 'a' });
  const req = resolveContainerRequest(plan, c, { volumeSources: { cache: '/run/p/cache', shm: '/run/p/shm' } });
  assert.deepEqual(req.HostConfig!.Mounts, [
    { Type: 'bind', Source: '/run/p/cache', Target: '/cache', ReadOnly: false },
    { Type: 'bind', Source: '/run/p/shm/a', Target: '/dev/shm/app', ReadOnly: false },
    { Type: 'bind', Source: '/var/log/app', Target: '/logs', ReadOnly: true },
  ]);
  assert.equal(c.request.HostConfig!.Mounts, undefined);
  assert.throws(() => resolveContainerRequest(plan, c, { volumeSources: {} }), /no host path for volume cache/);
});

test('probes: exec becomes a Healthcheck; httpGet and tcpSocket stay probe descriptions with ports resolved', () => {
  const plan = planOf(`${head}spec:
  containers:
  - name: a
    image: b
    livenessProbe: {exec: {command: [cat, /tmp/ok]}, initialDelaySeconds: 5, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 4}
  - name: h
    image: b
    ports: [{containerPort: 8080, name: http}]
    livenessProbe: {httpGet: {path: /healthz, port: http, scheme: HTTPS}}
  - name: t
    image: b
    livenessProbe: {tcpSocket: {port: 6379, host: 127.0.0.1}}
`);
  const [a, h, t] = plan.containers;
  assert.deepEqual(a!.request.Healthcheck, { Test: ['CMD', 'cat', '/tmp/ok'], Interval: 2e9, Timeout: 3e9, StartPeriod: 5e9, Retries: 4 });
  assert.deepEqual(a!.liveness, { action: { kind: 'exec', command: ['cat', '/tmp/ok'] }, initialDelaySeconds: 5, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 4 });
  assert.equal(h!.request.Healthcheck, undefined);
  assert.deepEqual(h!.liveness, { action: { kind: 'httpGet', port: 8080, path: '/healthz', scheme: 'HTTPS' }, initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3 });
  assert.deepEqual(t!.liveness!.action, { kind: 'tcpSocket', port: 6379, host: '127.0.0.1' });
});

test('tty, stdin, workingDir, dns, host aliases', () => {
  const plan = planOf(`${head}spec:
  dnsPolicy: None
  dnsConfig: {nameservers: [10.0.0.10], searches: [svc.local], options: [{name: ndots, value: "2"}, {name: edns0}]}
  hostAliases: [{ip: 10.1.2.3, hostnames: [db, db.local]}]
  containers:
  - {name: a, image: b, tty: true, stdin: true, stdinOnce: true, workingDir: /srv}
`);
  const req = plan.containers[0]!.request;
  assert.equal(req.Tty, true);
  assert.equal(req.OpenStdin, true);
  assert.equal(req.StdinOnce, true);
  assert.equal(req.WorkingDir, '/srv');
  assert.deepEqual(plan.dns, { policy: 'None', nameservers: ['10.0.0.10'], searches: ['svc.local'], options: ['ndots:2', 'edns0'] });
  assert.deepEqual(plan.extraHosts, ['db:10.1.2.3', 'db.local:10.1.2.3']);
});

test('warnings travel with the plan', () => {
  const [doc] = parsePodManifests(`${head}spec:\n  nodeName: n1\n  containers: [{name: a, image: b}]\n`);
  assert.deepEqual(planPod(doc!.pod, doc!.warnings).warnings, ['spec.nodeName: ignored: berth runs on one host']);
  assert.deepEqual(planPod(doc!.pod).warnings, []);
});
