import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validatePodObject, parseQuantity, isDnsLabel, isDnsSubdomain, isPortName, type KubeIssue } from './validate.js';
import { formatYamlPath } from './yaml.js';

function pod(spec: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec, ...extra };
}
const ok = (spec: Record<string, unknown> = {}): Record<string, unknown> => pod({ containers: [{ name: 'a', image: 'busybox' }], ...spec });
const lines = (issues: KubeIssue[]): string[] => issues.map((i) => `${formatYamlPath(i.path)}: ${i.message}`);

function errorsOf(doc: unknown): string[] {
  return lines(validatePodObject(doc).errors);
}
function hasError(doc: unknown, re: RegExp): void {
  const errs = errorsOf(doc);
  assert.ok(errs.some((e) => re.test(e)), `no error matching ${re}; got:\n${errs.join('\n')}`);
}

test('parseQuantity reads Kubernetes quantities', () => {
  const cases: [string | number, number | undefined][] = [
    ['100m', 0.1], ['0.5', 0.5], ['1', 1], ['1Gi', 2 ** 30], ['128M', 128e6], ['1e3', 1000], ['1E3', 1000], ['1E', 1e18],
    ['64Mi', 64 * 2 ** 20], ['1k', 1000], ['1Ki', 1024], ['.5', 0.5], ['2.5Gi', 2.5 * 2 ** 30], [0.25, 0.25], [1000, 1000],
    ['', undefined], ['1 Gi', undefined], ['1gi', undefined], ['abc', undefined], ['1KB', undefined], [' 1', undefined], ['1.2.3', undefined],
  ];
  for (const [input, want] of cases) assert.equal(parseQuantity(input), want, `parseQuantity(${JSON.stringify(input)})`);
});

test('name rules follow RFC 1123 and IANA_SVC_NAME', () => {
  assert.ok(isDnsLabel('web-1'));
  assert.ok(!isDnsLabel('Web'));
  assert.ok(!isDnsLabel('-a'));
  assert.ok(!isDnsLabel('a'.repeat(64)));
  assert.ok(isDnsSubdomain('a.b-c.d'));
  assert.ok(!isDnsSubdomain('a..b'));
  assert.ok(isPortName('http'));
  assert.ok(!isPortName('8080'));
  assert.ok(!isPortName('a--b'));
  assert.ok(!isPortName('a-very-long-port-name'));
});

test('a minimal pod validates with Kubernetes defaults', () => {
  const r = validatePodObject(ok());
  assert.deepEqual(r.errors, []);
  assert.equal(r.pod!.metadata.namespace, 'default');
  assert.equal(r.pod!.spec.restartPolicy, 'Always');
  assert.equal(r.pod!.spec.terminationGracePeriodSeconds, 30);
  assert.deepEqual(r.pod!.spec.containers[0]!.env, []);
});

test('wrong types name the path and the value', () => {
  hasError(pod({ containers: [{ name: 'a', image: 'b' }, { name: 'c', image: 'd', ports: [{ containerPort: 'http' }] }] }),
    /^spec\.containers\[1\]\.ports\[0\]\.containerPort: expected an integer, got "http"$/);
  hasError(ok({ hostNetwork: 'yes' }), /^spec\.hostNetwork: expected true or false, got "yes"$/);
  hasError(pod({ containers: { name: 'a' } }), /^spec\.containers: expected a list, got a map$/);
  hasError(pod({ containers: [{ name: 'a', image: 'b', command: 'sh -c x' }] }), /^spec\.containers\[0\]\.command: expected a list/);
  hasError(pod({ containers: [{ name: 'a', image: 'b', args: [1] }] }), /^spec\.containers\[0\]\.args\[0\]: expected a string, got 1$/);
  hasError(pod({ containers: [{ name: 'a', image: 'b', env: [{ name: 'X', value: 5 }] }] }), /env\[0\]\.value: expected a string, got 5/);
});

test('required fields: metadata.name, spec, containers, name, image', () => {
  hasError({ apiVersion: 'v1', kind: 'Pod', metadata: {}, spec: { containers: [{ name: 'a', image: 'b' }] } }, /^metadata\.name: required field is missing$/);
  hasError({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } }, /^spec: required field is missing$/);
  hasError(pod({}), /^spec\.containers: at least one container is required$/);
  hasError(pod({ containers: [{ image: 'b' }] }), /^spec\.containers\[0\]\.name: required field is missing$/);
  hasError(pod({ containers: [{ name: 'a' }] }), /^spec\.containers\[0\]\.image: required field is missing$/);
  hasError(pod({ containers: [{ name: 'a', image: '' }] }), /^spec\.containers\[0\]\.image: must not be empty$/);
});

test('kinds and apiVersions other than v1 Pod are refused at `kind`', () => {
  assert.deepEqual(errorsOf({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } }), [
    'kind: unsupported kind "Deployment": berth plays only kind Pod',
  ]);
  hasError({ ...ok(), apiVersion: 'v2' }, /^apiVersion: unsupported apiVersion "v2"/);
  hasError({ ...ok(), kind: undefined }, /^kind: required field is missing$/);
});

test('names: duplicates and RFC 1123', () => {
  hasError(pod({ containers: [{ name: 'a', image: 'b' }], initContainers: [{ name: 'a', image: 'b' }] }), /^spec\.containers\[0\]\.name: duplicate container name "a"$/);
  hasError(pod({ containers: [{ name: 'a_b', image: 'b' }] }), /^spec\.containers\[0\]\.name: invalid container name "a_b"/);
  hasError({ ...ok(), metadata: { name: 'Web' } }, /^metadata\.name: invalid pod name "Web"/);
  hasError(ok({ hostname: 'a.b' }), /^spec\.hostname: invalid hostname/);
  hasError(ok({ volumes: [{ name: 'V', emptyDir: {} }] }), /^spec\.volumes\[0\]\.name: invalid volume name "V"/);
  hasError(ok({ volumes: [{ name: 'v', emptyDir: {} }, { name: 'v', emptyDir: {} }] }), /^spec\.volumes\[1\]\.name: duplicate volume name "v"/);
});

test('labels and annotations', () => {
  const r = validatePodObject({ ...ok(), metadata: { name: 'p', labels: { 'app.kubernetes.io/name': 'web' }, annotations: { note: 'any text: here' } } });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.pod!.metadata.labels, { 'app.kubernetes.io/name': 'web' });
  hasError({ ...ok(), metadata: { name: 'p', labels: { app: 'has space' } } }, /^metadata\.labels\.app: invalid label value "has space"/);
  hasError({ ...ok(), metadata: { name: 'p', labels: { 'bad key!': 'x' } } }, /^metadata\.labels\["bad key!"\]: invalid label key/);
  hasError({ ...ok(), metadata: { name: 'p', labels: { app: 1 } } }, /^metadata\.labels\.app: expected a string, got 1$/);
});

test('volumeMounts must name a declared volume; paths are checked', () => {
  const spec = (mounts: unknown[]): Record<string, unknown> => ({
    containers: [{ name: 'a', image: 'b', volumeMounts: mounts }],
    volumes: [{ name: 'data', emptyDir: {} }],
  });
  hasError(pod(spec([{ name: 'nope', mountPath: '/x' }])), /^spec\.containers\[0\]\.volumeMounts\[0\]\.name: unknown volume "nope": not in spec\.volumes$/);
  hasError(pod(spec([{ name: 'data', mountPath: 'x' }])), /mountPath: must be an absolute path/);
  hasError(pod(spec([{ name: 'data', mountPath: '/x' }, { name: 'data', mountPath: '/x' }])), /volumeMounts\[1\]\.mountPath: duplicate mountPath/);
  hasError(pod(spec([{ name: 'data', mountPath: '/x', subPath: '../etc' }])), /subPath: must be a relative path without '\.\.'/);
  hasError(pod(spec([{ name: 'data', mountPath: '/x', mountPropagation: 'Bidirectional' }])), /volumeMounts\[0\]\.mountPropagation: not supported by berth$/);
});

test('volumes: emptyDir and hostPath only, one source each, enums checked', () => {
  const r = validatePodObject(ok({ volumes: [
    { name: 'a', emptyDir: {} }, { name: 'b', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } }, { name: 'c', hostPath: { path: '/srv', type: 'Directory' } }, { name: 'd', emptyDir: null },
  ] }));
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.pod!.spec.volumes, [
    { name: 'a', emptyDir: { medium: '' } },
    { name: 'b', emptyDir: { medium: 'Memory', sizeLimitBytes: 64 * 2 ** 20 } },
    { name: 'c', hostPath: { path: '/srv', type: 'Directory' } },
    { name: 'd', emptyDir: { medium: '' } },
  ]);
  hasError(ok({ volumes: [{ name: 'a', configMap: { name: 'x' } }] }), /^spec\.volumes\[0\]\.configMap: not supported by berth$/);
  hasError(ok({ volumes: [{ name: 'a', emptyDir: { medium: 'HugePages' } }] }), /emptyDir\.medium: unknown value "HugePages"/);
  hasError(ok({ volumes: [{ name: 'a', emptyDir: { sizeLimit: 'lots' } }] }), /emptyDir\.sizeLimit: invalid quantity "lots"/);
  hasError(ok({ volumes: [{ name: 'a', hostPath: { path: 'rel' } }] }), /hostPath\.path: must be an absolute path/);
  hasError(ok({ volumes: [{ name: 'a', hostPath: { path: '/x', type: 'Dir' } }] }), /hostPath\.type: unknown value "Dir"/);
  hasError(ok({ volumes: [{ name: 'a' }] }), /^spec\.volumes\[0\]: a volume needs exactly one source/);
  hasError(ok({ volumes: [{ name: 'a', emptyDir: {}, hostPath: { path: '/x' } }] }), /^spec\.volumes\[0\]: a volume has exactly one source/);
});

test('resources: quantities, unsupported resources, request above limit, request defaults to limit', () => {
  const c = (resources: unknown): Record<string, unknown> => pod({ containers: [{ name: 'a', image: 'b', resources }] });
  const r = validatePodObject(c({ limits: { cpu: '500m', memory: '64Mi' }, requests: { memory: '32M' } }));
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.pod!.spec.containers[0]!.resources, { limits: { cpuMilli: 500, memoryBytes: 64 * 2 ** 20 }, requests: { cpuMilli: 500, memoryBytes: 32e6 } });
  assert.deepEqual(validatePodObject(c({ limits: { cpu: 0.5 }, requests: { cpu: '1e-3' } })).pod!.spec.containers[0]!.resources.requests, { cpuMilli: 1 });
  assert.deepEqual(validatePodObject(c({ limits: { cpu: 2 } })).pod!.spec.containers[0]!.resources.limits, { cpuMilli: 2000 });
  hasError(c({ limits: { cpu: 'fast' } }), /^spec\.containers\[0\]\.resources\.limits\.cpu: invalid quantity "fast"/);
  hasError(c({ limits: { memory: '-1Gi' } }), /limits\.memory: must not be negative/);
  hasError(c({ limits: { memory: [1] } }), /limits\.memory: expected a quantity/);
  hasError(c({ limits: { 'ephemeral-storage': '1Gi' } }), /limits\["ephemeral-storage"\]: not supported by berth$/);
  hasError(c({ limits: { 'nvidia.com/gpu': 1 } }), /limits\["nvidia\.com\/gpu"\]: not supported by berth$/);
  hasError(c({ limits: { cpux: 1 } }), /limits\.cpux: unknown field$/);
  hasError(c({ limits: { cpu: '1' }, requests: { cpu: '2' } }), /requests\.cpu: request must not exceed the limit/);
});

test('ports: ranges, hostIP, protocol, duplicates, names, hostNetwork', () => {
  const c = (ports: unknown[], spec: Record<string, unknown> = {}): Record<string, unknown> => pod({ containers: [{ name: 'a', image: 'b', ports }], ...spec });
  const r = validatePodObject(c([{ containerPort: 80, hostPort: 8080, hostIP: '127.0.0.1', name: 'http' }, { containerPort: 53, protocol: 'UDP' }]));
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.pod!.spec.containers[0]!.ports, [
    { containerPort: 80, hostPort: 8080, hostIP: '127.0.0.1', protocol: 'TCP', name: 'http' },
    { containerPort: 53, protocol: 'UDP' },
  ]);
  hasError(c([{ containerPort: 0 }]), /ports\[0\]\.containerPort: must be between 1 and 65535, got 0/);
  hasError(c([{ containerPort: 70000 }]), /must be between 1 and 65535, got 70000/);
  hasError(c([{ hostPort: 80 }]), /ports\[0\]\.containerPort: required field is missing/);
  hasError(c([{ containerPort: 80, hostPort: -1 }]), /ports\[0\]\.hostPort: must be between 0 and 65535/);
  hasError(c([{ containerPort: 80, hostIP: 'localhost' }]), /ports\[0\]\.hostIP: invalid IP address "localhost"/);
  hasError(c([{ containerPort: 80, protocol: 'tcp' }]), /ports\[0\]\.protocol: unknown value "tcp"/);
  hasError(c([{ containerPort: 80, protocol: 'SCTP' }]), /ports\[0\]\.protocol: SCTP is not supported/);
  hasError(c([{ containerPort: 80 }, { containerPort: 80 }]), /ports\[1\]\.containerPort: duplicate port 80\/TCP/);
  hasError(c([{ containerPort: 80, name: 'HTTP' }]), /ports\[0\]\.name: invalid port name "HTTP"/);
  hasError(c([{ containerPort: 80, hostPort: 81 }], { hostNetwork: true }), /hostPort: with hostNetwork, hostPort must equal containerPort/);
  hasError(pod({ containers: [{ name: 'a', image: 'b', ports: [{ containerPort: 80, hostPort: 8080 }] }, { name: 'c', image: 'b', ports: [{ containerPort: 81, hostPort: 8080 }] }] }),
    /^spec\.containers\[1\]\.ports\[0\]\.hostPort: hostPort 8080\/TCP is already published by container "a"$/);
  hasError(pod({ containers: [{ name: 'a', image: 'b' }], initContainers: [{ name: 'i', image: 'b', ports: [{ containerPort: 1 }] }] }), /initContainers\[0\]\.ports: init containers cannot publish ports/);
});

test('enums: restartPolicy, imagePullPolicy, dnsPolicy', () => {
  hasError(ok({ restartPolicy: 'Sometimes' }), /^spec\.restartPolicy: unknown value "Sometimes"; expected one of "Always", "OnFailure", "Never"$/);
  hasError(pod({ containers: [{ name: 'a', image: 'b', imagePullPolicy: 'always' }] }), /imagePullPolicy: unknown value "always"/);
  hasError(ok({ dnsPolicy: 'None' }), /^spec\.dnsConfig: required when dnsPolicy is "None"$/);
  hasError(ok({ dnsConfig: { nameservers: ['dns.example'] } }), /^spec\.dnsConfig\.nameservers\[0\]: invalid IP address/);
});

test('env: values, fieldRefs, unsupported sources', () => {
  const c = (env: unknown[]): Record<string, unknown> => pod({ containers: [{ name: 'a', image: 'b', env }] });
  const r = validatePodObject(c([
    { name: 'A', value: '1' }, { name: 'E' },
    { name: 'N', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'L', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: "metadata.labels['app']" } } },
  ]));
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.pod!.spec.containers[0]!.env, [
    { name: 'A', value: '1' }, { name: 'E', value: '' },
    { name: 'N', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'L', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
  ]);
  hasError(c([{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'status.phase' } } }]), /env\[0\]\.valueFrom\.fieldRef\.fieldPath: unsupported fieldPath "status\.phase"/);
  hasError(c([{ name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }]), /env\[0\]\.valueFrom\.secretKeyRef: not supported by berth$/);
  hasError(c([{ name: 'X', value: 'v', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]), /env\[0\]\.valueFrom: value and valueFrom cannot both be set/);
  hasError(c([{ value: 'v' }]), /env\[0\]\.name: required field is missing/);
  hasError(pod({ containers: [{ name: 'a', image: 'b', envFrom: [] }] }), /^spec\.containers\[0\]\.envFrom: not supported by berth$/);
});

test('securityContext: container and pod fields, identities, unsupported ones', () => {
  const r = validatePodObject(pod({
    securityContext: { runAsUser: 1000, runAsGroup: 1000, supplementalGroups: [5], sysctls: [{ name: 'net.ipv4.ip_forward', value: '1' }] },
    containers: [{ name: 'a', image: 'b', securityContext: { privileged: false, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] } } }],
  }));
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.pod!.spec.containers[0]!.securityContext, { privileged: false, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] } });
  const c = (sc: unknown, podSc?: unknown): Record<string, unknown> => pod({ containers: [{ name: 'a', image: 'b', securityContext: sc }], ...(podSc ? { securityContext: podSc } : {}) });
  hasError(c({ runAsUser: -1 }), /securityContext\.runAsUser: must be between 0/);
  hasError(c({ runAsUser: '1000' }), /securityContext\.runAsUser: expected an integer, got "1000"/);
  hasError(c({ capabilities: { add: ['net_admin'] } }), /capabilities\.add\[0\]: invalid capability "net_admin"/);
  hasError(c({ privileged: true, allowPrivilegeEscalation: false }), /allowPrivilegeEscalation: cannot be false when privileged is true/);
  hasError(c({ seccompProfile: { type: 'RuntimeDefault' } }), /securityContext\.seccompProfile: not supported by berth$/);
  hasError(c({ runAsGroup: 5 }), /containers\[0\]\.securityContext\.runAsUser: berth needs runAsUser when runAsGroup is set/);
  hasError(c({ runAsUser: 0 }, { runAsNonRoot: true }), /runAsNonRoot is true but runAsUser is 0/);
  hasError(c({}, { fsGroup: 2000 }), /^spec\.securityContext\.fsGroup: not supported by berth$/);
  assert.deepEqual(errorsOf(c({ runAsGroup: 5 }, { runAsUser: 7 })), []);
});

test('probes: handlers, named ports, defaults, one handler only', () => {
  const c = (probe: unknown, ports: unknown[] = [{ containerPort: 8080, name: 'http' }]): Record<string, unknown> =>
    pod({ containers: [{ name: 'a', image: 'b', ports, livenessProbe: probe }] });
  const r = validatePodObject(c({ httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5 }));
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.pod!.spec.containers[0]!.livenessProbe, {
    handler: { kind: 'httpGet', path: '/healthz', port: 'http', scheme: 'HTTP' },
    initialDelaySeconds: 0, periodSeconds: 5, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1,
  });
  assert.deepEqual(validatePodObject(c({ exec: { command: ['true'] } })).errors, []);
  assert.deepEqual(validatePodObject(c({ tcpSocket: { port: 8080 } })).errors, []);
  hasError(c({ tcpSocket: { port: 'metrics' } }), /livenessProbe\.tcpSocket\.port: unknown port name "metrics"/);
  hasError(c({ httpGet: { path: '/' } }), /livenessProbe\.httpGet\.port: required field is missing/);
  hasError(c({ exec: { command: ['true'] }, tcpSocket: { port: 1 } }), /livenessProbe: a probe has exactly one handler, got exec, tcpSocket/);
  hasError(c({ periodSeconds: 1 }), /livenessProbe: a probe needs exactly one of exec, httpGet, tcpSocket/);
  hasError(c({ grpc: { port: 1 } }), /livenessProbe\.grpc: not supported by berth/);
  hasError(c({ exec: { command: ['true'] }, periodSeconds: 0 }), /livenessProbe\.periodSeconds: must be between 1/);
  hasError(c({ httpGet: { port: 1, httpHeaders: [] } }), /httpGet\.httpHeaders: not supported by berth/);
  hasError(pod({ containers: [{ name: 'a', image: 'b', startupProbe: {} }] }), /startupProbe: not supported by berth/);
});

test('unknown fields are errors; informational ones are warnings', () => {
  hasError({ ...ok(), extra: 1 }, /^extra: unknown field$/);
  hasError(ok({ contianers: [] }), /^spec\.contianers: unknown field$/);
  hasError(ok({ hostPID: true }), /^spec\.hostPID: not supported by berth$/);
  hasError({ ...ok(), metadata: { name: 'p', generateName: 'p-' } }, /^metadata\.generateName: not supported by berth$/);
  const r = validatePodObject({
    ...ok({ nodeSelector: { disk: 'ssd' }, terminationGracePeriodSeconds: 5 }),
    metadata: { name: 'p', uid: 'u', creationTimestamp: null },
    status: { phase: 'Running' },
  });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(lines(r.warnings).sort(), [
    'metadata.creationTimestamp: ignored: set by a cluster',
    'metadata.uid: ignored: set by a cluster',
    'spec.nodeSelector: ignored: berth runs on one host',
    'status: ignored: status is written by a cluster',
  ]);
  assert.equal(r.pod!.spec.terminationGracePeriodSeconds, 5);
  const rp = validatePodObject(pod({ containers: [{ name: 'a', image: 'b', readinessProbe: { exec: { command: ['x'] } } }] }));
  assert.deepEqual(lines(rp.warnings), ['spec.containers[0].readinessProbe: ignored: there are no Services to take the pod out of']);
});

test('every error in a document is collected', () => {
  const errs = errorsOf(pod({ restartPolicy: 'x', containers: [{ name: 'A' }, { image: 'b', ports: [{ containerPort: 'p' }] }] }));
  assert.equal(errs.length, 5, errs.join('\n'));
});
