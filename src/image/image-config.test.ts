import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../errors.js';
import { detectManifestKind, parseImageConfig, parseIndex, parseManifest, runtimeView } from './image-config.js';
import { MediaType } from './types.js';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const clone = <T>(v: T): T => structuredClone(v);

function assertInvalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BerthError, String(err));
    assert.equal(err.code, 'InvalidArgument');
    assert.match(err.message, pattern);
    return true;
  });
}

// Shaped like what `docker build` writes (Docker's extra fields kept, nulls where Docker puts them).
const DOCKER_CONFIG = {
  architecture: 'amd64',
  os: 'linux',
  created: '2024-01-02T03:04:05.123456789Z',
  docker_version: '24.0.7',
  config: {
    Hostname: '',
    User: 'app:app',
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8'],
    Entrypoint: ['/docker-entrypoint.sh'],
    Cmd: ['nginx', '-g', 'daemon off;'],
    WorkingDir: '/srv',
    ExposedPorts: { '80/tcp': {}, '443/tcp': {}, '53/udp': {}, '8080': {} },
    Volumes: { '/var/cache': {}, '/data': {} },
    Labels: { maintainer: 'someone', 'org.opencontainers.image.version': '1.2' },
    StopSignal: 'SIGQUIT',
    Healthcheck: { Test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'], Interval: 30_000_000_000, Retries: 3 },
    OnBuild: null,
    ArgsEscaped: true,
  },
  rootfs: { type: 'layers', diff_ids: [d('1'), d('2')] },
  history: [
    { created: '2024-01-01T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:… in / ' },
    { created: '2024-01-01T00:00:01Z', created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true },
    { created: '2024-01-02T00:00:00Z', created_by: 'RUN apt-get install nginx', comment: 'buildkit.dockerfile.v0' },
  ],
};

const OCI_MANIFEST = {
  schemaVersion: 2,
  mediaType: MediaType.ociManifest,
  config: { mediaType: MediaType.ociConfig, digest: d('c'), size: 1234 },
  layers: [
    { mediaType: MediaType.ociLayerGzip, digest: d('a'), size: 100 },
    { mediaType: MediaType.ociLayerZstd, digest: `sha512:${'b'.repeat(128)}`, size: 0, annotations: { x: 'y' } },
  ],
  annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
};

const DOCKER_MANIFEST = {
  schemaVersion: 2,
  mediaType: MediaType.dockerManifest,
  config: { mediaType: MediaType.dockerConfig, digest: d('c'), size: 1234 },
  layers: [{ mediaType: MediaType.dockerLayerGzip, digest: d('a'), size: 100 }],
};

const DOCKER_LIST = {
  schemaVersion: 2,
  mediaType: MediaType.dockerManifestList,
  manifests: [
    { mediaType: MediaType.dockerManifest, digest: d('1'), size: 528, platform: { architecture: 'amd64', os: 'linux' } },
    { mediaType: MediaType.dockerManifest, digest: d('2'), size: 528, platform: { architecture: 'arm', os: 'linux', variant: 'v7' } },
    {
      mediaType: MediaType.dockerManifest,
      digest: d('3'),
      size: 528,
      platform: { architecture: 'amd64', os: 'windows', 'os.version': '10.0.17763.5329', 'os.features': ['win32k'] },
    },
  ],
};

const OCI_INDEX = {
  schemaVersion: 2,
  mediaType: MediaType.ociIndex,
  manifests: [
    { mediaType: MediaType.ociManifest, digest: d('1'), size: 10, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
    // buildx attestation manifests sit next to images with an unknown platform.
    {
      mediaType: MediaType.ociManifest,
      digest: d('4'),
      size: 10,
      platform: { architecture: 'unknown', os: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    },
  ],
};

const SCHEMA1 = {
  schemaVersion: 1,
  name: 'library/busybox',
  tag: 'latest',
  architecture: 'amd64',
  fsLayers: [{ blobSum: d('a') }],
  history: [{ v1Compatibility: '{}' }],
  signatures: [],
};

describe('parseImageConfig', () => {
  it('accepts a Docker config and keeps its extra fields', () => {
    const config = parseImageConfig(json(DOCKER_CONFIG), 'config X');
    assert.equal(config.architecture, 'amd64');
    assert.deepEqual(config.rootfs.diff_ids, [d('1'), d('2')]);
    assert.equal((config as unknown as { docker_version: string }).docker_version, '24.0.7');
  });

  it('accepts a minimal OCI config (no config, no history)', () => {
    const config = parseImageConfig(json({ architecture: 'arm64', variant: 'v8', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }), 'c');
    assert.equal(config.config, undefined);
    assert.equal(config.history, undefined);
  });

  it('treats null where Docker writes null as absent', () => {
    const doc = clone(DOCKER_CONFIG) as Record<string, unknown> & { config: Record<string, unknown> };
    Object.assign(doc.config, { Env: null, Labels: null, Volumes: null, ExposedPorts: null, Entrypoint: null, Cmd: null });
    const view = runtimeView(parseImageConfig(json(doc), 'c'));
    assert.deepEqual([view.env, view.labels, view.volumes, view.exposedPorts, view.entrypoint, view.cmd], [[], {}, [], [], [], []]);
    assert.equal(parseImageConfig(json({ ...doc, config: null, history: null }), 'c').config, undefined);
  });

  const bad: Array<[string, (doc: Record<string, any>) => void, RegExp]> = [
    ['missing architecture', (x) => delete x.architecture, /^config X: architecture: missing$/],
    ['empty os', (x) => (x.os = ''), /^config X: os: expected a non-empty string$/],
    ['numeric variant', (x) => (x.variant = 8), /^config X: variant: expected a string$/],
    ['missing rootfs', (x) => delete x.rootfs, /^config X: rootfs: missing$/],
    ['wrong rootfs.type', (x) => (x.rootfs.type = 'tar'), /^config X: rootfs.type: expected "layers", found "tar"$/],
    ['missing diff_ids', (x) => delete x.rootfs.diff_ids, /^config X: rootfs.diff_ids: missing$/],
    ['bad diff_id', (x) => (x.rootfs.diff_ids[1] = 'sha256:abc'), /^config X: rootfs.diff_ids\[1\]: "sha256:abc" is not a digest/],
    ['numeric diff_id', (x) => (x.rootfs.diff_ids[0] = 5), /rootfs.diff_ids\[0\]: expected a digest string/],
    ['config not an object', (x) => (x.config = []), /^config X: config: expected an object$/],
    ['Env not strings', (x) => (x.config.Env = ['A=1', 2]), /^config X: config.Env\[1\]: expected a string$/],
    ['Cmd a string', (x) => (x.config.Cmd = 'sh -c true'), /^config X: config.Cmd: expected an array of strings$/],
    ['bad port key', (x) => (x.config.ExposedPorts = { 'http/tcp': {} }), /config.ExposedPorts\["http\/tcp"\]: expected PORT/],
    ['label not a string', (x) => (x.config.Labels = { a: 1 }), /config.Labels\["a"\]: expected a string$/],
    ['healthcheck interval', (x) => (x.config.Healthcheck.Interval = '30s'), /config.Healthcheck.Interval: expected a non-negative integer \(nanoseconds\)/],
    ['history entry', (x) => (x.history[2] = 'RUN'), /^config X: history\[2\]: expected an object$/],
    ['empty_layer', (x) => (x.history[0].empty_layer = 'yes'), /history\[0\].empty_layer: expected a boolean/],
  ];
  for (const [name, mutate, pattern] of bad) {
    it(`refuses ${name}`, () => {
      const doc = clone(DOCKER_CONFIG) as Record<string, any>;
      mutate(doc);
      assertInvalid(() => parseImageConfig(json(doc), 'config X'), pattern);
    });
  }

  it('refuses what is not a JSON object', () => {
    assertInvalid(() => parseImageConfig(Buffer.from('{"os":'), 'config X'), /^config X: not valid JSON/);
    assertInvalid(() => parseImageConfig(Buffer.from('[]'), 'config X'), /^config X: expected a JSON object, found an array$/);
  });
});

describe('runtimeView', () => {
  it('exposes what the engine needs, with ports and volumes normalised', () => {
    const view = runtimeView(parseImageConfig(json(DOCKER_CONFIG), 'c'));
    assert.deepEqual(view, {
      entrypoint: ['/docker-entrypoint.sh'],
      cmd: ['nginx', '-g', 'daemon off;'],
      env: DOCKER_CONFIG.config.Env,
      workingDir: '/srv',
      user: 'app:app',
      exposedPorts: ['53/udp', '80/tcp', '443/tcp', '8080/tcp'],
      volumes: ['/data', '/var/cache'],
      labels: DOCKER_CONFIG.config.Labels,
      stopSignal: 'SIGQUIT',
      healthcheck: DOCKER_CONFIG.config.Healthcheck,
      history: DOCKER_CONFIG.history,
      created: DOCKER_CONFIG.created,
      architecture: 'amd64',
      os: 'linux',
    });
  });

  it('fills Docker defaults for an empty config', () => {
    const view = runtimeView(parseImageConfig(json({ architecture: 'arm', variant: 'v7', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }), 'c'));
    assert.deepEqual(view, {
      entrypoint: [],
      cmd: [],
      env: [],
      workingDir: '',
      user: '',
      exposedPorts: [],
      volumes: [],
      labels: {},
      history: [],
      architecture: 'arm',
      os: 'linux',
      variant: 'v7',
    });
  });

  it('does not share the label object with the config', () => {
    const config = parseImageConfig(json(DOCKER_CONFIG), 'c');
    runtimeView(config).labels.extra = 'x';
    assert.equal(config.config?.Labels?.extra, undefined);
  });
});

describe('parseManifest', () => {
  it('accepts OCI and Docker schema 2 manifests', () => {
    assert.deepEqual(parseManifest(json(OCI_MANIFEST), 'm'), OCI_MANIFEST);
    assert.deepEqual(parseManifest(json(DOCKER_MANIFEST), 'm', MediaType.dockerManifest), DOCKER_MANIFEST);
    const { mediaType: _omitted, ...noMediaType } = OCI_MANIFEST;
    assert.deepEqual(parseManifest(json(noMediaType), 'm', MediaType.ociManifest), noMediaType);
  });

  it('refuses schema 1 with the deprecation message', () => {
    for (const [doc, mediaType] of [
      [SCHEMA1, undefined],
      [{ ...SCHEMA1, schemaVersion: 2, mediaType: MediaType.dockerManifestV1Signed }, undefined],
      [DOCKER_MANIFEST, MediaType.dockerManifestV1],
    ] as const) {
      assertInvalid(
        () => parseManifest(json(doc), 'manifest of docker.io/library/old:1', mediaType),
        /^manifest of docker.io\/library\/old:1: schema 1 manifests are deprecated and not supported; push the image again with a current client$/,
      );
    }
  });

  const bad: Array<[string, (doc: Record<string, any>) => void, RegExp]> = [
    ['schemaVersion 3', (x) => (x.schemaVersion = 3), /^m: schemaVersion: expected 2, found 3$/],
    ['no schemaVersion', (x) => delete x.schemaVersion, /^m: schemaVersion: expected 2, found null$/],
    ['an index media type', (x) => (x.mediaType = MediaType.ociIndex), /^m: mediaType: ".*index.v1\+json" is not an image manifest type \(it is an image index\)$/],
    ['an unknown media type', (x) => (x.mediaType = 'text/plain'), /mediaType: "text\/plain" is not an image manifest type$/],
    ['missing config', (x) => delete x.config, /^m: config: missing$/],
    ['missing layers', (x) => delete x.layers, /^m: layers: missing$/],
    ['layers an object', (x) => (x.layers = {}), /^m: layers: expected an array$/],
    ['a layer without mediaType', (x) => delete x.layers[1].mediaType, /^m: layers\[1\].mediaType: missing or not a string$/],
    ['a bad layer digest', (x) => (x.layers[0].digest = 'sha256:XYZ'), /^m: layers\[0\].digest: "sha256:XYZ" is not a digest/],
    ['a negative size', (x) => (x.layers[0].size = -1), /^m: layers\[0\].size: expected a non-negative integer, found -1$/],
    ['a fractional size', (x) => (x.config.size = 1.5), /^m: config.size: expected a non-negative integer, found 1.5$/],
    ['a string size', (x) => (x.config.size = '12'), /config.size: expected a non-negative integer, found "12"$/],
    ['a missing size', (x) => delete x.config.size, /config.size: expected a non-negative integer, found null$/],
    ['urls not strings', (x) => (x.layers[0].urls = [1]), /layers\[0\].urls\[0\]: expected a string$/],
    ['annotation not a string', (x) => (x.annotations = { a: true }), /^m: annotations\["a"\]: expected a string$/],
    ['a bad subject', (x) => (x.subject = { mediaType: 'x', digest: 'nope', size: 1 }), /^m: subject.digest: "nope" is not a digest/],
  ];
  for (const [name, mutate, pattern] of bad) {
    it(`refuses ${name}`, () => {
      const doc = clone(OCI_MANIFEST) as Record<string, any>;
      mutate(doc);
      assertInvalid(() => parseManifest(json(doc), 'm'), pattern);
    });
  }

  it('refuses an index passed as a manifest, and a media type the descriptor contradicts', () => {
    const { mediaType: _omitted, ...bareIndex } = OCI_INDEX;
    assertInvalid(() => parseManifest(json(bareIndex), 'm'), /^m: manifests: present: this is an image index, not a manifest$/);
    assertInvalid(() => parseManifest(json(OCI_MANIFEST), 'm', MediaType.dockerManifest), /^m: mediaType: ".*oci.image.manifest.v1\+json" does not match ".*docker.distribution.manifest.v2\+json"/);
  });
});

describe('parseIndex', () => {
  it('accepts OCI indexes and Docker manifest lists', () => {
    assert.deepEqual(parseIndex(json(DOCKER_LIST), 'i'), DOCKER_LIST);
    assert.deepEqual(parseIndex(json(OCI_INDEX), 'i', MediaType.ociIndex), OCI_INDEX);
    assert.deepEqual(parseIndex(json({ schemaVersion: 2, manifests: [] }), 'i'), { schemaVersion: 2, manifests: [] });
  });

  it('refuses schema 1', () => {
    assertInvalid(() => parseIndex(json(SCHEMA1), 'i'), /^i: schema 1 manifests are deprecated/);
  });

  const bad: Array<[string, (doc: Record<string, any>) => void, RegExp]> = [
    ['a manifest media type', (x) => (x.mediaType = MediaType.dockerManifest), /^i: mediaType: ".*" is not an image index type \(it is an image manifest\)$/],
    ['missing manifests', (x) => delete x.manifests, /^i: manifests: missing$/],
    ['a manifest body', (x) => (delete x.manifests, delete x.mediaType, (x.config = {}), (x.layers = [])), /^i: manifests: missing: this is an image manifest, not an index$/],
    ['manifests an object', (x) => (x.manifests = {}), /^i: manifests: expected an array$/],
    ['an entry that is not an object', (x) => (x.manifests[1] = 'sha256:…'), /^i: manifests\[1\]: expected a descriptor object$/],
    ['a platform without os', (x) => delete x.manifests[1].platform.os, /^i: manifests\[1\].platform.os: missing or not a string$/],
    ['a numeric variant', (x) => (x.manifests[0].platform.variant = 7), /manifests\[0\].platform.variant: expected a string$/],
    ['os.features not strings', (x) => (x.manifests[2].platform['os.features'] = 'win32k'), /manifests\[2\].platform\["os.features"\]: expected an array of strings$/],
    ['a bad digest', (x) => (x.manifests[0].digest = d('1').toUpperCase()), /^i: manifests\[0\].digest: "SHA256:.*" is not a digest/],
  ];
  for (const [name, mutate, pattern] of bad) {
    it(`refuses ${name}`, () => {
      const doc = clone(DOCKER_LIST) as Record<string, any>;
      mutate(doc);
      assertInvalid(() => parseIndex(json(doc), 'i'), pattern);
    });
  }
});

describe('detectManifestKind', () => {
  const cases: Array<[string, unknown, string | undefined, string]> = [
    ['OCI manifest by body', OCI_MANIFEST, undefined, 'manifest'],
    ['Docker manifest by header', { ...DOCKER_MANIFEST, mediaType: undefined }, `${MediaType.dockerManifest}; charset=utf-8`, 'manifest'],
    ['OCI index by body', OCI_INDEX, 'application/json', 'index'],
    ['Docker list by header', DOCKER_LIST, MediaType.dockerManifestList, 'index'],
    ['index by shape', { schemaVersion: 2, manifests: [] }, undefined, 'index'],
    ['manifest by shape', { schemaVersion: 2, config: {}, layers: [] }, 'application/octet-stream', 'manifest'],
    ['schema 1 by version', SCHEMA1, MediaType.dockerManifest, 'schema1'],
    ['schema 1 by header', { signatures: [] }, MediaType.dockerManifestV1Signed, 'schema1'],
    ['schema 1 by shape', { fsLayers: [] }, undefined, 'schema1'],
  ];
  for (const [name, doc, contentType, kind] of cases) {
    it(name, () => assert.equal(detectManifestKind(json(doc), contentType), kind));
  }

  it('refuses documents it cannot classify or whose header contradicts the body', () => {
    assertInvalid(() => detectManifestKind(json({ schemaVersion: 2 }), 'application/json', 'manifest of x'), /^manifest of x: not an image index or manifest/);
    assertInvalid(() => detectManifestKind(Buffer.from('<html>'), 'text/html'), /^manifest: not valid JSON/);
    assertInvalid(() => detectManifestKind(json(OCI_INDEX), MediaType.ociManifest), /Content-Type ".*manifest.v1\+json" but the document's mediaType is ".*index.v1\+json"/);
  });
});
