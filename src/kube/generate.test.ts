import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePodManifest, formatMemoryQuantity, formatCpuQuantity, type KubePodView } from './generate.js';
import { parsePodManifests } from './manifest.js';
import { planPod, resolveContainerRequest } from './plan.js';

test('quantities are written in their shortest exact form', () => {
  assert.equal(formatMemoryQuantity(64 * 2 ** 20), '64Mi');
  assert.equal(formatMemoryQuantity(2 ** 30), '1Gi');
  assert.equal(formatMemoryQuantity(1536), '1536');
  assert.equal(formatMemoryQuantity(128e6), '128M');
  assert.equal(formatMemoryQuantity(1e8 + 1), '100000001');
  assert.equal(formatCpuQuantity(500), '500m');
  assert.equal(formatCpuQuantity(2000), '2');
  assert.equal(formatCpuQuantity(97.6), '98m');
});

test('a minimal pod has no empty fields and a stable field order', () => {
  const text = generatePodManifest({ name: 'web', containers: [{ name: 'srv', image: 'busybox', env: [], ports: [], mounts: [] }] });
  assert.equal(text, `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: srv
    image: busybox
`);
});

const VIEW: KubePodView = {
  name: 'web',
  namespace: 'shop',
  labels: { app: 'web' },
  annotations: { note: 'yes' },
  hostname: 'front',
  shareProcessNamespace: true,
  restartPolicy: 'OnFailure',
  stopTimeoutSeconds: 10,
  initContainers: [{ name: 'setup', image: 'busybox', command: ['sh', '-c'], args: ['echo 1 > /data/x'], mounts: [{ volume: 'data', target: '/data', readOnly: false }] }],
  containers: [
    {
      name: 'srv',
      image: 'busybox:1.36',
      command: ['httpd'],
      args: ['-f', '-p', '80'],
      env: [{ name: 'MODE', value: 'true' }, { name: 'N', value: '1' }],
      ports: [{ containerPort: 80, hostPort: 8080, hostIP: '127.0.0.1' }, { containerPort: 53, protocol: 'UDP' }],
      workingDir: '/www',
      resources: { memoryBytes: 64 * 2 ** 20, nanoCpus: 500_000_000, cpuShares: 512 },
      securityContext: { runAsUser: 1000, runAsGroup: 1000, readOnlyRootFilesystem: true, capAdd: ['NET_BIND_SERVICE'], capDrop: ['ALL'], allowPrivilegeEscalation: false },
      mounts: [{ volume: 'data', target: '/www', readOnly: true }, { volume: 'shm', target: '/cache', readOnly: false, subPath: 'srv' }],
      tty: true,
      stdin: true,
    },
  ],
  volumes: [
    { name: 'data', kind: 'emptyDir', medium: 'disk' },
    { name: 'shm', kind: 'emptyDir', medium: 'memory', sizeBytes: 2 ** 26 },
    { name: 'host', kind: 'hostPath', path: '/srv/x', type: '' },
  ],
};

test('round trip: plan(parse(generate(view))) matches the view', () => {
  const text = generatePodManifest(VIEW);
  assert.equal(generatePodManifest(VIEW), text, 'same input, same text');
  assert.match(text, /emptyDir: \{\}/);
  const [doc] = parsePodManifests(text, { file: 'generated.yaml' });
  assert.deepEqual(doc!.warnings, []);
  const plan = planPod(doc!.pod);
  assert.equal(plan.name, VIEW.name);
  assert.equal(plan.namespace, VIEW.namespace);
  assert.deepEqual(plan.labels, VIEW.labels);
  assert.deepEqual(plan.annotations, VIEW.annotations);
  assert.equal(plan.hostname, VIEW.hostname);
  assert.ok(plan.sharedNamespaces.includes('pid'));
  assert.equal(plan.restartPolicy, VIEW.restartPolicy);
  assert.equal(plan.stopTimeoutSeconds, VIEW.stopTimeoutSeconds);
  assert.deepEqual(plan.volumes, VIEW.volumes);
  assert.deepEqual(plan.ports, [{ container: 'srv', containerPort: 80, hostPort: 8080, hostIP: '127.0.0.1', protocol: 'TCP' }]);

  const want = VIEW.containers[0]!;
  const srv = plan.containers[0]!;
  const req = resolveContainerRequest(plan, srv, { volumeSources: { data: '/p/data', shm: '/p/shm' } });
  assert.deepEqual(req.Entrypoint, want.command);
  assert.deepEqual(req.Cmd, want.args);
  assert.deepEqual(req.Env, want.env!.map((e) => `${e.name}=${e.value}`));
  assert.equal(req.WorkingDir, want.workingDir);
  assert.equal(req.User, '1000:1000');
  assert.equal(req.Tty, true);
  assert.equal(req.OpenStdin, true);
  assert.equal(req.HostConfig!.Memory, want.resources!.memoryBytes);
  assert.equal(req.HostConfig!.NanoCpus, want.resources!.nanoCpus);
  assert.equal(req.HostConfig!.CpuShares, want.resources!.cpuShares);
  assert.equal(req.HostConfig!.ReadonlyRootfs, true);
  assert.deepEqual(req.HostConfig!.CapAdd, want.securityContext!.capAdd);
  assert.deepEqual(req.HostConfig!.CapDrop, want.securityContext!.capDrop);
  assert.deepEqual(req.HostConfig!.SecurityOpt, ['no-new-privileges']);
  assert.deepEqual(srv.mounts, want.mounts);
  assert.deepEqual(plan.containers[0]!.request.ExposedPorts, { '80/tcp': {}, '53/udp': {} });
  const setup = plan.initContainers[0]!;
  assert.deepEqual([setup.name, setup.request.Entrypoint, setup.request.Cmd], ['setup', ['sh', '-c'], ['echo 1 > /data/x']]);
});

test('strings that look like other YAML types stay strings', () => {
  const text = generatePodManifest({ name: 'p', containers: [{ name: 'a', image: 'b', env: [{ name: 'X', value: '123' }, { name: 'Y', value: 'null' }, { name: 'Z', value: '' }] }] });
  const env = parsePodManifests(text)[0]!.pod.spec.containers[0]!.env;
  assert.deepEqual(env, [{ name: 'X', value: '123' }, { name: 'Y', value: 'null' }, { name: 'Z', value: '' }]);
});
