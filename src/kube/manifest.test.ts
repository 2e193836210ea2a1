import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePodManifests, readPodManifests } from './manifest.js';
import { isBerthError } from '../errors.js';

const POD_A = `apiVersion: v1
kind: Pod
metadata:
  name: a
spec:
  containers:
  - name: web
    image: busybox
`;

function invalid(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isBerthError(err, 'InvalidArgument'), String(err));
    assert.match(err.message, re);
    return true;
  });
}

test('several documents, empty ones skipped, indexes kept', () => {
  const text = `---\n${POD_A}---\n---\n# only a comment\n---\n${POD_A.replace('name: a', 'name: b')}`;
  const docs = parsePodManifests(text);
  assert.deepEqual(docs.map((d) => [d.index, d.pod.metadata.name]), [[0, 'a'], [3, 'b']]);
  assert.deepEqual(docs[0]!.warnings, []);
});

test('other kinds name the document index, the kind and the path `kind`', () => {
  const text = `${POD_A}---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n`;
  invalid(() => parsePodManifests(text, { file: 'app.yaml' }), /^app\.yaml: document 1: 1 error:\n {2}kind: unsupported kind "Service": berth plays only kind Pod \(line 11\)$/);
});

test('all errors of a document in one message, with paths and lines', () => {
  const text = `apiVersion: v1
kind: Pod
metadata:
  name: bad
spec:
  containers:
  - name: one
    image: busybox
  - name: two
    ports:
    - containerPort: http
`;
  invalid(() => parsePodManifests(text, { file: 'pod.yaml' }), /pod\.yaml: document 0: 2 errors:\n {2}spec\.containers\[1\]\.image: required field is missing \(line 9\)\n {2}spec\.containers\[1\]\.ports\[0\]\.containerPort: expected an integer, got "http" \(line 11\)/);
});

test('YAML syntax errors and duplicate keys name the line', () => {
  invalid(() => parsePodManifests('apiVersion: v1\nkind: [Pod\n', { file: 'x.yaml' }), /^x\.yaml: document 0: YAML syntax: line \d+/);
  invalid(() => parsePodManifests('kind: Pod\nkind: Pod\n', { file: 'x.yaml' }), /^x\.yaml: document 0: YAML syntax: line 2/);
});

test('a file without Pods is an error', () => {
  invalid(() => parsePodManifests('---\n---\n', { file: 'e.yaml' }), /^e\.yaml: no Pod documents found$/);
  invalid(() => parsePodManifests('just a string', { file: 'e.yaml' }), /document 0: 1 error:\n {2}\(document\): expected a map, got "just a string"/);
});

test('YAML 1.2 core schema: yes stays a string, so a boolean field reports it', () => {
  invalid(() => parsePodManifests(POD_A + '  hostNetwork: yes\n'), /spec\.hostNetwork: expected true or false, got "yes"/);
});

test('warnings are returned with the document', () => {
  const docs = parsePodManifests(POD_A + 'status:\n  phase: Running\n');
  assert.deepEqual(docs[0]!.warnings, ['status: ignored: status is written by a cluster']);
});

test('readPodManifests reads a file; a missing file is NotFound', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-kube-test-'));
  try {
    const file = join(dir, 'pod.yaml');
    await writeFile(file, POD_A);
    const docs = await readPodManifests(file);
    assert.equal(docs[0]!.pod.spec.containers[0]!.image, 'busybox');
    await assert.rejects(readPodManifests(join(dir, 'nope.yaml')), (err: unknown) => isBerthError(err, 'NotFound'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('what `kubectl run --dry-run=client -o yaml` writes is accepted, with its bookkeeping as warnings', () => {
  const text = `apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    run: nginx
  name: nginx
spec:
  containers:
  - image: nginx
    name: nginx
    resources: {}
    ports:
    - containerPort: 80
      hostIP: 127.0.0.1
  dnsPolicy: ClusterFirst
  restartPolicy: Always
status: {}
`;
  const [doc] = parsePodManifests(text);
  assert.equal(doc!.pod.spec.dnsPolicy, 'ClusterFirst');
  assert.deepEqual(doc!.pod.spec.containers[0]!.resources, { limits: {}, requests: {} });
  assert.deepEqual(doc!.warnings, [
    'metadata.creationTimestamp: ignored: set by a cluster',
    'spec.containers[0].ports[0].hostIP: ignored: the port has no hostPort, so nothing is published',
    'status: ignored: status is written by a cluster',
  ]);
});

test('two pods with one name in a file are refused', () => {
  invalid(() => parsePodManifests(`${POD_A}---\n${POD_A}`, { file: 'd.yaml' }), /^d\.yaml: document 1: metadata\.name: pod "a" is already defined in document 0$/);
  assert.equal(parsePodManifests(`${POD_A}---\n${POD_A.replace('name: a', 'name: a\n  namespace: other')}`).length, 2);
});
