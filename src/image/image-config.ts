// Validation of the JSON documents of an image (index, manifest, config) as they arrive from
// a registry or an archive, and the part of the config the engine runs a container from.
// Every rejection names the document (`where`) and the JSON path of the bad field, because
// these documents come from elsewhere and the user has to find out which one is wrong.
import { BerthError } from '../errors.js';
import { parseDigest } from './digest.js';
import {
  MediaType,
  isIndexMediaType,
  isManifestMediaType,
  type ContainerConfig,
  type Descriptor,
  type HealthConfig,
  type HistoryEntry,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  type Platform,
} from './types.js';

export type ManifestKind = 'index' | 'manifest' | 'schema1';

/** What the engine needs from an image config to create a container. */
export interface RuntimeView {
  entrypoint: string[];
  cmd: string[];
  /** `KEY=value` entries, in image order. */
  env: string[];
  workingDir: string;
  user: string;
  /** `80/tcp`, `53/udp`; a port without protocol is tcp (as Docker). */
  exposedPorts: string[];
  volumes: string[];
  labels: Record<string, string>;
  stopSignal?: string;
  healthcheck?: HealthConfig;
  history: HistoryEntry[];
  created?: string;
  architecture: string;
  os: string;
  variant?: string;
}

const SCHEMA1_MEDIA_TYPES: readonly string[] = [MediaType.dockerManifestV1, MediaType.dockerManifestV1Signed];

type JsonObject = Record<string, unknown>;

/** The one message for schema 1, wherever it is detected (Content-Type or body). */
export function schema1Error(where: string): BerthError {
  return new BerthError(
    'InvalidArgument',
    `${where}: schema 1 manifests are deprecated and not supported; push the image again with a current client`,
    { hint: 'Docker 20.10+, Podman, buildx or skopeo all write schema 2 / OCI manifests' },
  );
}

/**
 * Classifies a manifest document. The body's own `mediaType` wins over the Content-Type; a
 * body and a Content-Type that disagree on the kind are refused rather than guessed at.
 */
export function detectManifestKind(bytes: Buffer, contentType?: string, where = 'manifest'): ManifestKind {
  const doc = parseObject(bytes, where);
  const header = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  const fromHeader = kindOfMediaType(header);
  if (doc.schemaVersion === 1) return 'schema1';
  const fromBody = typeof doc.mediaType === 'string' ? kindOfMediaType(doc.mediaType) : undefined;
  if (fromBody !== undefined && fromHeader !== undefined && fromBody !== fromHeader) {
    throw new BerthError(
      'InvalidArgument',
      `${where}: the registry sent Content-Type "${header}" but the document's mediaType is "${String(doc.mediaType)}"`,
      { hint: 'the registry or the pushed image is inconsistent; push the image again' },
    );
  }
  const kind = fromBody ?? fromHeader ?? kindOfShape(doc);
  if (kind === undefined) {
    throw new BerthError(
      'InvalidArgument',
      `${where}: not an image index or manifest (Content-Type "${header}", mediaType ${JSON.stringify(doc.mediaType ?? null)}, no "manifests", "config" or "layers")`,
    );
  }
  return kind;
}

function kindOfMediaType(mediaType: string): ManifestKind | undefined {
  if (isIndexMediaType(mediaType)) return 'index';
  if (isManifestMediaType(mediaType)) return 'manifest';
  if (SCHEMA1_MEDIA_TYPES.includes(mediaType)) return 'schema1';
  return undefined;
}

function kindOfShape(doc: JsonObject): ManifestKind | undefined {
  if (Array.isArray(doc.manifests)) return 'index';
  if (doc.config !== undefined || doc.layers !== undefined) return 'manifest';
  if (doc.fsLayers !== undefined || doc.signatures !== undefined) return 'schema1';
  return undefined;
}

/**
 * Validates an image manifest (OCI or Docker schema 2). `mediaType`, when known (from the
 * descriptor or Content-Type that led here), must agree with the document's own.
 */
export function parseManifest(bytes: Buffer, where: string, mediaType?: string): ImageManifest {
  const doc = parseObject(bytes, where);
  checkSchema2(doc, where, mediaType);
  const docType = optionalString(doc, 'mediaType', where);
  if (docType !== undefined && !isManifestMediaType(docType)) {
    throw invalid(where, 'mediaType', `"${docType}" is not an image manifest type${isIndexMediaType(docType) ? ' (it is an image index)' : ''}`);
  }
  if (docType === undefined && Array.isArray(doc.manifests)) {
    throw invalid(where, 'manifests', 'present: this is an image index, not a manifest');
  }
  if (doc.config === undefined) throw invalid(where, 'config', 'missing');
  const config = checkDescriptor(doc.config, where, 'config');
  if (!Array.isArray(doc.layers)) throw invalid(where, 'layers', doc.layers === undefined ? 'missing' : 'expected an array');
  const layers = doc.layers.map((layer, i) => checkDescriptor(layer, where, `layers[${i}]`));
  checkStringMap(doc.annotations, where, 'annotations');
  if (doc.subject !== undefined) checkDescriptor(doc.subject, where, 'subject');
  return { ...doc, config, layers } as ImageManifest;
}

/** Validates an image index (OCI) or manifest list (Docker). */
export function parseIndex(bytes: Buffer, where: string, mediaType?: string): ImageIndex {
  const doc = parseObject(bytes, where);
  checkSchema2(doc, where, mediaType);
  const docType = optionalString(doc, 'mediaType', where);
  if (docType !== undefined && !isIndexMediaType(docType)) {
    throw invalid(where, 'mediaType', `"${docType}" is not an image index type${isManifestMediaType(docType) ? ' (it is an image manifest)' : ''}`);
  }
  if (!Array.isArray(doc.manifests)) {
    const looksLikeManifest = doc.config !== undefined || doc.layers !== undefined;
    throw invalid(where, 'manifests', doc.manifests !== undefined ? 'expected an array' : looksLikeManifest ? 'missing: this is an image manifest, not an index' : 'missing');
  }
  const manifests = doc.manifests.map((m, i) => checkDescriptor(m, where, `manifests[${i}]`));
  checkStringMap(doc.annotations, where, 'annotations');
  return { ...doc, manifests } as ImageIndex;
}

function checkSchema2(doc: JsonObject, where: string, expectedMediaType: string | undefined): void {
  if (doc.schemaVersion === 1 || (typeof doc.mediaType === 'string' && SCHEMA1_MEDIA_TYPES.includes(doc.mediaType))) {
    throw schema1Error(where);
  }
  if (expectedMediaType !== undefined && SCHEMA1_MEDIA_TYPES.includes(expectedMediaType)) throw schema1Error(where);
  if (doc.schemaVersion !== 2) throw invalid(where, 'schemaVersion', `expected 2, found ${JSON.stringify(doc.schemaVersion ?? null)}`);
  if (expectedMediaType !== undefined && typeof doc.mediaType === 'string' && doc.mediaType !== expectedMediaType) {
    throw invalid(where, 'mediaType', `"${doc.mediaType}" does not match "${expectedMediaType}" from the descriptor or Content-Type that named this document`);
  }
}

function checkDescriptor(value: unknown, where: string, path: string): Descriptor {
  if (!isObject(value)) throw invalid(where, path, 'expected a descriptor object');
  const mediaType = value.mediaType;
  if (typeof mediaType !== 'string' || mediaType === '') throw invalid(where, `${path}.mediaType`, 'missing or not a string');
  if (typeof value.digest !== 'string') throw invalid(where, `${path}.digest`, 'missing or not a string');
  parseDigest(value.digest, `${where}: ${path}.digest`);
  const size = value.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(where, `${path}.size`, `expected a non-negative integer, found ${JSON.stringify(size ?? null)}`);
  }
  if (value.urls !== undefined) checkStringArray(value.urls, where, `${path}.urls`);
  checkStringMap(value.annotations, where, `${path}.annotations`);
  if (value.platform !== undefined) checkPlatform(value.platform, where, `${path}.platform`);
  optionalString(value, 'artifactType', where, path);
  return value as unknown as Descriptor;
}

function checkPlatform(value: unknown, where: string, path: string): Platform {
  if (!isObject(value)) throw invalid(where, path, 'expected an object');
  for (const key of ['architecture', 'os'] as const) {
    if (typeof value[key] !== 'string' || value[key] === '') throw invalid(where, `${path}.${key}`, 'missing or not a string');
  }
  optionalString(value, 'variant', where, path);
  optionalString(value, 'os.version', where, path);
  if (value['os.features'] !== undefined) checkStringArray(value['os.features'], where, `${path}["os.features"]`);
  return value as unknown as Platform;
}

/** Validates an image config; `where` names it (`config sha256:… of docker.io/library/busybox:latest`). */
export function parseImageConfig(bytes: Buffer, where: string): ImageConfig {
  const doc = parseObject(bytes, where);
  for (const key of ['architecture', 'os'] as const) {
    if (typeof doc[key] !== 'string' || doc[key] === '') throw invalid(where, key, doc[key] === undefined ? 'missing' : 'expected a non-empty string');
  }
  for (const key of ['variant', 'os.version', 'created', 'author']) optionalString(doc, key, where);
  if (doc['os.features'] !== undefined) checkStringArray(doc['os.features'], where, '["os.features"]');

  const rootfs = doc.rootfs;
  if (!isObject(rootfs)) throw invalid(where, 'rootfs', rootfs === undefined ? 'missing' : 'expected an object');
  if (rootfs.type !== 'layers') throw invalid(where, 'rootfs.type', `expected "layers", found ${JSON.stringify(rootfs.type ?? null)}`);
  if (!Array.isArray(rootfs.diff_ids)) throw invalid(where, 'rootfs.diff_ids', rootfs.diff_ids === undefined ? 'missing' : 'expected an array');
  rootfs.diff_ids.forEach((id: unknown, i: number) => {
    if (typeof id !== 'string') throw invalid(where, `rootfs.diff_ids[${i}]`, 'expected a digest string');
    parseDigest(id, `${where}: rootfs.diff_ids[${i}]`);
  });

  const out: JsonObject = { ...doc };
  if (doc.config === null || doc.config === undefined) delete out.config;
  else out.config = checkContainerConfig(doc.config, where);

  if (doc.history !== undefined && doc.history !== null) {
    if (!Array.isArray(doc.history)) throw invalid(where, 'history', 'expected an array');
    doc.history.forEach((entry: unknown, i: number) => checkHistory(entry, where, `history[${i}]`));
  } else {
    delete out.history;
  }
  return out as unknown as ImageConfig;
}

function checkContainerConfig(value: unknown, where: string): ContainerConfig {
  const path = 'config';
  if (!isObject(value)) throw invalid(where, path, 'expected an object');
  const out: JsonObject = { ...value };
  for (const key of ['User', 'WorkingDir', 'StopSignal']) optionalString(value, key, where, path);
  for (const key of ['Env', 'Shell']) {
    if (value[key] === null) delete out[key];
    else if (value[key] !== undefined) checkStringArray(value[key], where, `${path}.${key}`);
  }
  // Entrypoint and Cmd keep null: Docker distinguishes "reset" (null) from absent when merging.
  for (const key of ['Entrypoint', 'Cmd', 'OnBuild']) {
    if (value[key] !== undefined && value[key] !== null) checkStringArray(value[key], where, `${path}.${key}`);
  }
  for (const key of ['ExposedPorts', 'Volumes']) {
    if (value[key] === null) delete out[key];
    else if (value[key] !== undefined && !isObject(value[key])) throw invalid(where, `${path}.${key}`, 'expected an object');
  }
  if (value.ExposedPorts !== undefined && value.ExposedPorts !== null) {
    for (const port of Object.keys(value.ExposedPorts as JsonObject)) {
      if (!/^\d{1,5}(?:-\d{1,5})?(?:\/[a-z]+)?$/i.test(port)) throw invalid(where, `${path}.ExposedPorts["${port}"]`, 'expected PORT[/PROTOCOL], e.g. "80/tcp"');
    }
  }
  if (value.Labels === null) delete out.Labels;
  else checkStringMap(value.Labels, where, `${path}.Labels`);
  if (value.ArgsEscaped !== undefined && typeof value.ArgsEscaped !== 'boolean') throw invalid(where, `${path}.ArgsEscaped`, 'expected a boolean');
  if (value.Healthcheck === null) delete out.Healthcheck;
  else if (value.Healthcheck !== undefined) checkHealthcheck(value.Healthcheck, where, `${path}.Healthcheck`);
  return out as ContainerConfig;
}

function checkHealthcheck(value: unknown, where: string, path: string): void {
  if (!isObject(value)) throw invalid(where, path, 'expected an object');
  if (value.Test !== undefined && value.Test !== null) checkStringArray(value.Test, where, `${path}.Test`);
  for (const key of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries']) {
    const v = value[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) {
      throw invalid(where, `${path}.${key}`, `expected a non-negative integer${key === 'Retries' ? '' : ' (nanoseconds)'}`);
    }
  }
}

function checkHistory(value: unknown, where: string, path: string): void {
  if (!isObject(value)) throw invalid(where, path, 'expected an object');
  for (const key of ['created', 'created_by', 'author', 'comment']) optionalString(value, key, where, path);
  if (value.empty_layer !== undefined && typeof value.empty_layer !== 'boolean') throw invalid(where, `${path}.empty_layer`, 'expected a boolean');
}

/** The container-facing view of a validated config, with Docker's defaults filled in. */
export function runtimeView(config: ImageConfig): RuntimeView {
  const c: ContainerConfig = config.config ?? {};
  const view: RuntimeView = {
    entrypoint: c.Entrypoint ?? [],
    cmd: c.Cmd ?? [],
    env: c.Env ?? [],
    workingDir: c.WorkingDir ?? '',
    user: c.User ?? '',
    exposedPorts: normalisePorts(Object.keys(c.ExposedPorts ?? {})),
    volumes: Object.keys(c.Volumes ?? {}).sort(),
    labels: { ...(c.Labels ?? {}) },
    history: config.history ?? [],
    architecture: config.architecture,
    os: config.os,
  };
  if (c.StopSignal !== undefined && c.StopSignal !== '') view.stopSignal = c.StopSignal;
  if (c.Healthcheck !== undefined) view.healthcheck = c.Healthcheck;
  if (config.created !== undefined) view.created = config.created;
  if (config.variant !== undefined) view.variant = config.variant;
  return view;
}

function normalisePorts(keys: string[]): string[] {
  const ports = new Set(keys.map((k) => (k.includes('/') ? k.toLowerCase() : `${k}/tcp`)));
  const portNumber = (p: string): number => Number.parseInt(p, 10);
  return [...ports].sort((a, b) => portNumber(a) - portNumber(b) || a.localeCompare(b));
}

function parseObject(bytes: Buffer, where: string): JsonObject {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new BerthError('InvalidArgument', `${where}: not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (!isObject(doc)) throw new BerthError('InvalidArgument', `${where}: expected a JSON object, found ${Array.isArray(doc) ? 'an array' : typeof doc}`);
  return doc;
}

function invalid(where: string, path: string, problem: string): BerthError {
  return new BerthError('InvalidArgument', `${where}: ${path}: ${problem}`);
}

function optionalString(obj: JsonObject, key: string, where: string, parent?: string): string | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(where, jsonPath(parent, key), 'expected a string');
  return v;
}

function checkStringArray(value: unknown, where: string, path: string): void {
  if (!Array.isArray(value)) throw invalid(where, path, 'expected an array of strings');
  value.forEach((v, i) => {
    if (typeof v !== 'string') throw invalid(where, `${path}[${i}]`, 'expected a string');
  });
}

function checkStringMap(value: unknown, where: string, path: string): void {
  if (value === undefined) return;
  if (!isObject(value)) throw invalid(where, path, 'expected an object of strings');
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalid(where, `${path}[${JSON.stringify(k)}]`, 'expected a string');
  }
}

function jsonPath(parent: string | undefined, key: string): string {
  const part = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : `[${JSON.stringify(key)}]`;
  if (parent === undefined) return part;
  return part.startsWith('[') ? `${parent}${part}` : `${parent}.${part}`;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
