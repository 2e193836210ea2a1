// Checks a plain-value Pod document and converts it to the typed KubePod, collecting every
// problem with its YAML path instead of stopping at the first.
//
// Fields outside the supported subset are never dropped silently. The decision per field:
//
// | field                                                          | outcome   | why                                         |
// |----------------------------------------------------------------|-----------|---------------------------------------------|
// | status                                                         | warning   | output of a cluster                         |
// | metadata.uid, creationTimestamp, resourceVersion, generation,  | warning   | server-set bookkeeping                      |
// |   selfLink, managedFields, ownerReferences, finalizers,        |           |                                             |
// |   deletionTimestamp, deletionGracePeriodSeconds                |           |                                             |
// | metadata.generateName                                          | error     | `kube down` needs a fixed name              |
// | spec.terminationGracePeriodSeconds                             | supported | containers' StopTimeout                     |
// | spec.dnsPolicy, dnsConfig, hostAliases, securityContext.sysctls| supported | plan.dns, extraHosts, sysctls               |
// |   and supplementalGroups, container imagePullPolicy            |           |                                             |
// | spec.nodeName, nodeSelector, affinity, tolerations,            | warning   | scheduling: one host, nothing to choose     |
// |   schedulerName, priority, priorityClassName,                  |           |                                             |
// |   preemptionPolicy, topologySpreadConstraints                  |           |                                             |
// | spec.serviceAccountName, serviceAccount,                       | warning   | no API server, no Services                  |
// |   automountServiceAccountToken, enableServiceLinks             |           |                                             |
// | spec.imagePullSecrets                                          | warning   | berth pulls with its own credentials        |
// | spec.hostIPC, hostPID, hostUsers, subdomain, overhead,         | error     | not built                                   |
// |   runtimeClassName, readinessGates, os, setHostnameAsFQDN,     |           |                                             |
// |   activeDeadlineSeconds, ephemeralContainers, resourceClaims,  |           |                                             |
// |   schedulingGates                                              |           |                                             |
// | spec.securityContext.fsGroup, fsGroupChangePolicy,             | error     | not built                                   |
// |   seLinuxOptions, seLinuxChangePolicy, seccompProfile,         |           |                                             |
// |   appArmorProfile, windowsOptions, supplementalGroupsPolicy    |           |                                             |
// | container terminationMessagePath, terminationMessagePolicy     | warning   | no termination-message file                 |
// | container readinessProbe                                       | warning   | no Services to route by it (init: error)    |
// | container startupProbe, lifecycle, envFrom, resizePolicy,      | error     | not built                                   |
// |   restartPolicy (sidecar init containers), volumeDevices       |           |                                             |
// | container securityContext.seLinuxOptions, seccompProfile,      | error     | not built                                   |
// |   appArmorProfile, procMount, windowsOptions                   |           |                                             |
// | runAsGroup without runAsUser (pod or container level)          | error     | Docker's User cannot name only a group      |
// | env valueFrom secretKeyRef, configMapKeyRef, resourceFieldRef  | error     | no Secrets, ConfigMaps, resource fields     |
// | fieldRef paths other than metadata.name/namespace/labels['k']/ | error     | nothing to resolve them from                |
// |   annotations['k'], status.podIP/podIPs/hostIP, spec.nodeName  |           |                                             |
// | volumeMounts mountPropagation, subPathExpr, recursiveReadOnly  | error     | not built                                   |
// | volumes other than emptyDir and hostPath                       | error     | not built                                   |
// | resources other than cpu and memory; resources.claims          | error     | no device/hugepage/ephemeral-storage limits |
// | ports protocol SCTP                                            | error     | berth publishes TCP and UDP only            |
// | ports hostIP without hostPort                                  | warning   | nothing is published                        |
// | probe grpc, httpGet.httpHeaders, terminationGracePeriodSeconds | error     | not built                                   |
// | any field Kubernetes does not have                             | error     | "unknown field", as strict decoding does    |
import { isIP } from 'node:net';
import type {
  KubePod,
  KubeContainer,
  KubeEnvVar,
  KubeContainerPort,
  KubeResourceList,
  KubeResources,
  KubeContainerSecurityContext,
  KubePodSecurityContext,
  KubeVolumeMount,
  KubeProbe,
  KubeProbeHandler,
  KubeVolume,
  KubeDnsConfig,
  KubeHostPathType,
  KubePullPolicy,
  KubeObjectMeta,
} from './manifest.js';
import type { YamlPath } from './yaml.js';

export interface KubeIssue {
  path: YamlPath;
  message: string;
}

export interface PodValidation {
  /** Set when `errors` is empty. */
  pod?: KubePod;
  errors: KubeIssue[];
  warnings: KubeIssue[];
}

type Obj = Record<string, unknown>;
type Path = (string | number)[];

const LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const CAPABILITY_RE = /^[A-Z][A-Z0-9_]*$/;

/** True for an RFC 1123 DNS label (at most 63 lowercase alphanumerics and '-'). */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && LABEL_RE.test(s);
}

/** True for an RFC 1123 subdomain (dot-separated labels, at most 253 characters). */
export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && SUBDOMAIN_RE.test(s);
}

/** Kubernetes' IANA_SVC_NAME rule for port names. */
export function isPortName(s: string): boolean {
  return s.length >= 1 && s.length <= 15 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(s) && /[a-z]/.test(s) && !s.includes('--');
}

const SUFFIX_FACTORS: Record<string, number> = {
  n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/**
 * A Kubernetes resource quantity ("500m", "0.5", "1Gi", "128M", "1e3", or a YAML number) as a
 * plain number; undefined when it is not one.
 */
export function parseQuantity(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) ? input : undefined;
  const m = /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/.exec(input.trim());
  if (!m || input.trim() !== input) return undefined;
  const base = Number(m[1]);
  if (m[2] !== undefined) return Number(`${m[1]}${m[2]}`);
  return base * SUFFIX_FACTORS[m[3] ?? '']!;
}

const WARN_POD_FIELDS: Record<string, string> = {
  nodeName: 'ignored: berth runs on one host',
  nodeSelector: 'ignored: berth runs on one host',
  affinity: 'ignored: berth runs on one host',
  tolerations: 'ignored: berth runs on one host',
  schedulerName: 'ignored: berth runs on one host',
  priority: 'ignored: berth runs on one host',
  priorityClassName: 'ignored: berth runs on one host',
  preemptionPolicy: 'ignored: berth runs on one host',
  topologySpreadConstraints: 'ignored: berth runs on one host',
  serviceAccountName: 'ignored: there is no API server',
  serviceAccount: 'ignored: there is no API server',
  automountServiceAccountToken: 'ignored: there is no API server',
  enableServiceLinks: 'ignored: there are no Services',
  imagePullSecrets: "ignored: berth pulls with its own registry credentials",
};
const UNSUPPORTED_POD_FIELDS = [
  'hostIPC', 'hostPID', 'hostUsers', 'subdomain', 'overhead', 'runtimeClassName', 'readinessGates', 'os',
  'setHostnameAsFQDN', 'activeDeadlineSeconds', 'ephemeralContainers', 'resourceClaims', 'schedulingGates',
];
const WARN_META_FIELDS = [
  'uid', 'creationTimestamp', 'resourceVersion', 'generation', 'selfLink', 'managedFields', 'ownerReferences',
  'finalizers', 'deletionTimestamp', 'deletionGracePeriodSeconds',
];

class Checker {
  readonly errors: KubeIssue[] = [];
  readonly warnings: KubeIssue[] = [];

  error(path: Path, message: string): undefined {
    this.errors.push({ path: [...path], message });
    return undefined;
  }

  warn(path: Path, message: string): void {
    this.warnings.push({ path: [...path], message });
  }

  /**
   * Checks that `v` is a map and reports every key outside `known` (unsupported ones by name,
   * informational ones as warnings, the rest as unknown).
   */
  object(v: unknown, path: Path, known: readonly string[], extra: { unsupported?: readonly string[]; warn?: Record<string, string> } = {}): Obj | undefined {
    if (v === null || v === undefined) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) return this.error(path, `expected a map, got ${describe(v)}`);
    const o = v as Obj;
    for (const key of Object.keys(o)) {
      if (known.includes(key)) continue;
      if (extra.warn && key in extra.warn) this.warn([...path, key], extra.warn[key]!);
      else if (extra.unsupported?.includes(key)) this.error([...path, key], 'not supported by berth');
      else this.error([...path, key], 'unknown field');
    }
    return o;
  }

  array(v: unknown, path: Path): unknown[] {
    if (v === null || v === undefined) return [];
    if (!Array.isArray(v)) {
      this.error(path, `expected a list, got ${describe(v)}`);
      return [];
    }
    return v;
  }

  string(v: unknown, path: Path, required = false): string | undefined {
    if (v === null || v === undefined) return required ? this.error(path, 'required field is missing') : undefined;
    if (typeof v !== 'string') return this.error(path, `expected a string, got ${describe(v)}`);
    if (required && v === '') return this.error(path, 'must not be empty');
    return v;
  }

  int(v: unknown, path: Path, range?: { min: number; max: number }): number | undefined {
    if (v === null || v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) return this.error(path, `expected an integer, got ${describe(v)}`);
    if (range && (v < range.min || v > range.max)) return this.error(path, `must be between ${range.min} and ${range.max}, got ${v}`);
    return v;
  }

  bool(v: unknown, path: Path): boolean | undefined {
    if (v === null || v === undefined) return undefined;
    if (typeof v !== 'boolean') return this.error(path, `expected true or false, got ${describe(v)}`);
    return v;
  }

  enumOf<T extends string>(v: unknown, path: Path, values: readonly T[]): T | undefined {
    const s = this.string(v, path);
    if (s === undefined) return undefined;
    if (!(values as readonly string[]).includes(s)) {
      return this.error(path, `unknown value ${JSON.stringify(s)}; expected one of ${values.map((x) => JSON.stringify(x)).join(', ')}`);
    }
    return s as T;
  }

  strings(v: unknown, path: Path): string[] | undefined {
    if (v === null || v === undefined) return undefined;
    const list = this.array(v, path);
    const out: string[] = [];
    list.forEach((item, i) => {
      const s = this.string(item, [...path, i]);
      if (s !== undefined) out.push(s);
    });
    return out;
  }

  stringMap(v: unknown, path: Path, kind: 'label' | 'annotation'): Record<string, string> {
    const o = this.object(v, path, Object.keys((v as Obj | null) ?? {}));
    const out: Record<string, string> = {};
    if (!o) return out;
    for (const [key, value] of Object.entries(o)) {
      const p = [...path, key];
      const slash = key.lastIndexOf('/');
      const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
      const name = slash >= 0 ? key.slice(slash + 1) : key;
      if ((prefix !== undefined && !isDnsSubdomain(prefix)) || name.length > 63 || !QUALIFIED_NAME_RE.test(name)) {
        this.error(p, `invalid ${kind} key: expected [prefix/]name with name of at most 63 alphanumerics, '-', '_' or '.'`);
        continue;
      }
      const s = this.string(value, p);
      if (s === undefined) continue;
      if (kind === 'label' && (s.length > 63 || !LABEL_VALUE_RE.test(s))) {
        this.error(p, `invalid label value ${JSON.stringify(s)}: at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric`);
        continue;
      }
      out[key] = s;
    }
    return out;
  }

  quantity(v: unknown, path: Path, unit: 'cpu' | 'memory'): number | undefined {
    if (v === null || v === undefined) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') return this.error(path, `expected a quantity such as ${unit === 'cpu' ? '"500m"' : '"64Mi"'}, got ${describe(v)}`);
    const q = parseQuantity(v);
    if (q === undefined) return this.error(path, `invalid quantity ${JSON.stringify(v)}; expected e.g. ${unit === 'cpu' ? '"500m", "0.5" or "2"' : '"64Mi", "128M", "1Gi" or "1e9"'}`);
    if (q < 0) return this.error(path, `must not be negative, got ${JSON.stringify(v)}`);
    // Kubernetes rounds up to the smallest unit it stores: a millicore or a byte.
    return unit === 'cpu' ? Math.ceil(Math.round(q * 1e9) / 1e6) : Math.ceil(q);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/** Validates one decoded YAML document as a v1 Pod. */
export function validatePodObject(doc: unknown): PodValidation {
  const c = new Checker();
  const top = c.object(doc, [], ['apiVersion', 'kind', 'metadata', 'spec'], { warn: { status: 'ignored: status is written by a cluster' } });
  if (!top) {
    if (doc !== null && doc !== undefined) return { errors: c.errors, warnings: c.warnings };
    c.error([], 'expected a Pod object');
    return { errors: c.errors, warnings: c.warnings };
  }
  const apiVersion = c.string(top.apiVersion, ['apiVersion'], true);
  const kind = c.string(top.kind, ['kind'], true);
  if (kind !== undefined && kind !== 'Pod') {
    c.error(['kind'], `unsupported kind ${JSON.stringify(kind)}: berth plays only kind Pod`);
    return { errors: c.errors, warnings: c.warnings };
  }
  if (apiVersion !== undefined && apiVersion !== 'v1') c.error(['apiVersion'], `unsupported apiVersion ${JSON.stringify(apiVersion)}: a Pod is "v1"`);

  const metadata = checkMetadata(c, top.metadata);
  const spec = checkSpec(c, top.spec);
  if (c.errors.length > 0 || !metadata || !spec) return { errors: c.errors, warnings: c.warnings };
  return { pod: { apiVersion: 'v1', kind: 'Pod', metadata, spec }, errors: c.errors, warnings: c.warnings };
}

function checkMetadata(c: Checker, v: unknown): KubeObjectMeta | undefined {
  const p = ['metadata'];
  if (v === undefined || v === null) return c.error(p, 'required field is missing');
  const warn = Object.fromEntries(WARN_META_FIELDS.map((f) => [f, 'ignored: set by a cluster']));
  const o = c.object(v, p, ['name', 'namespace', 'labels', 'annotations'], { warn, unsupported: ['generateName'] });
  if (!o) return undefined;
  const name = c.string(o.name, [...p, 'name'], true);
  if (name !== undefined && !isDnsSubdomain(name)) c.error([...p, 'name'], `invalid pod name ${JSON.stringify(name)}: lowercase alphanumerics, '-' and '.', at most 253, starting and ending alphanumeric (RFC 1123)`);
  const namespace = c.string(o.namespace, [...p, 'namespace']) ?? 'default';
  if (!isDnsLabel(namespace)) c.error([...p, 'namespace'], `invalid namespace ${JSON.stringify(namespace)}: must be an RFC 1123 label`);
  const labels = c.stringMap(o.labels, [...p, 'labels'], 'label');
  const annotations = c.stringMap(o.annotations, [...p, 'annotations'], 'annotation');
  return name === undefined ? undefined : { name, namespace, labels, annotations };
}

const SPEC_FIELDS = [
  'containers', 'initContainers', 'volumes', 'restartPolicy', 'hostname', 'hostNetwork', 'shareProcessNamespace',
  'dnsPolicy', 'dnsConfig', 'hostAliases', 'securityContext', 'terminationGracePeriodSeconds',
];

function checkSpec(c: Checker, v: unknown): KubePod['spec'] | undefined {
  const p = ['spec'];
  if (v === undefined || v === null) return c.error(p, 'required field is missing');
  const o = c.object(v, p, SPEC_FIELDS, { warn: WARN_POD_FIELDS, unsupported: UNSUPPORTED_POD_FIELDS });
  if (!o) return undefined;

  const volumes = checkVolumes(c, o.volumes);
  const volumeNames = new Set(volumes.map((x) => x.name));
  const hostNetwork = c.bool(o.hostNetwork, [...p, 'hostNetwork']) ?? false;
  const names = new Set<string>();
  const containersRaw = c.array(o.containers, [...p, 'containers']);
  if (o.containers === undefined || o.containers === null || (Array.isArray(o.containers) && o.containers.length === 0)) {
    c.error([...p, 'containers'], 'at least one container is required');
  }
  const ctx = { names, volumeNames, hostNetwork };
  const initContainers = c.array(o.initContainers, [...p, 'initContainers']).map((x, i) => checkContainer(c, x, [...p, 'initContainers', i], { ...ctx, init: true }));
  const containers = containersRaw.map((x, i) => checkContainer(c, x, [...p, 'containers', i], { ...ctx, init: false }));
  checkHostPortClashes(c, containers);
  const securityContext = checkPodSecurity(c, o.securityContext);
  checkIdentities(c, securityContext, [...initContainers.map((x, i) => ({ x, path: [...p, 'initContainers', i] })), ...containers.map((x, i) => ({ x, path: [...p, 'containers', i] }))]);

  const restartPolicy = c.enumOf(o.restartPolicy, [...p, 'restartPolicy'], ['Always', 'OnFailure', 'Never'] as const) ?? 'Always';
  const hostname = c.string(o.hostname, [...p, 'hostname']);
  if (hostname !== undefined && !isDnsLabel(hostname)) c.error([...p, 'hostname'], `invalid hostname ${JSON.stringify(hostname)}: must be an RFC 1123 label`);
  const shareProcessNamespace = c.bool(o.shareProcessNamespace, [...p, 'shareProcessNamespace']) ?? false;
  const dnsPolicy = c.enumOf(o.dnsPolicy, [...p, 'dnsPolicy'], ['ClusterFirst', 'Default', 'None', 'ClusterFirstWithHostNet'] as const);
  const dnsConfig = checkDnsConfig(c, o.dnsConfig);
  if (dnsPolicy === 'None' && !dnsConfig) c.error([...p, 'dnsConfig'], 'required when dnsPolicy is "None"');
  const hostAliases = c.array(o.hostAliases, [...p, 'hostAliases']).flatMap((x, i) => {
    const hp = [...p, 'hostAliases', i];
    const h = c.object(x, hp, ['ip', 'hostnames']);
    if (!h) return [];
    const ip = c.string(h.ip, [...hp, 'ip'], true);
    if (ip !== undefined && isIP(ip) === 0) c.error([...hp, 'ip'], `invalid IP address ${JSON.stringify(ip)}`);
    const hostnames = c.strings(h.hostnames, [...hp, 'hostnames']) ?? [];
    return ip === undefined ? [] : [{ ip, hostnames }];
  });
  const terminationGracePeriodSeconds = c.int(o.terminationGracePeriodSeconds, [...p, 'terminationGracePeriodSeconds'], { min: 0, max: 2 ** 31 - 1 }) ?? 30;

  if (containers.some((x) => x === undefined) || initContainers.some((x) => x === undefined)) return undefined;
  return {
    containers: containers as KubeContainer[],
    initContainers: initContainers as KubeContainer[],
    volumes,
    restartPolicy,
    ...(hostname !== undefined ? { hostname } : {}),
    hostNetwork,
    shareProcessNamespace,
    ...(dnsPolicy !== undefined ? { dnsPolicy } : {}),
    ...(dnsConfig ? { dnsConfig } : {}),
    hostAliases,
    ...(securityContext ? { securityContext } : {}),
    terminationGracePeriodSeconds,
  };
}

function checkIdentities(c: Checker, pod: KubePodSecurityContext | undefined, list: { x: KubeContainer | undefined; path: Path }[]): void {
  for (const { x, path } of list) {
    if (!x) continue;
    const user = x.securityContext?.runAsUser ?? pod?.runAsUser;
    const group = x.securityContext?.runAsGroup ?? pod?.runAsGroup;
    const nonRoot = x.securityContext?.runAsNonRoot ?? pod?.runAsNonRoot;
    if (group !== undefined && user === undefined) {
      c.error([...path, 'securityContext', 'runAsUser'], 'berth needs runAsUser when runAsGroup is set (set both, in the pod or the container)');
    }
    if (nonRoot && user === 0) c.error([...path, 'securityContext', 'runAsUser'], 'runAsNonRoot is true but runAsUser is 0');
  }
}

function checkHostPortClashes(c: Checker, containers: (KubeContainer | undefined)[]): void {
  const seen = new Map<string, string>();
  containers.forEach((ct, i) => {
    ct?.ports.forEach((port, j) => {
      if (!port.hostPort) return;
      const key = `${port.hostIP ?? ''}/${port.hostPort}/${port.protocol}`;
      const before = seen.get(key);
      if (before) c.error(['spec', 'containers', i, 'ports', j, 'hostPort'], `hostPort ${port.hostPort}/${port.protocol} is already published by ${before}`);
      else seen.set(key, `container ${JSON.stringify(ct.name)}`);
    });
  });
}

const UNSUPPORTED_VOLUME_SOURCES = [
  'configMap', 'secret', 'persistentVolumeClaim', 'projected', 'downwardAPI', 'ephemeral', 'image', 'csi', 'nfs', 'iscsi',
  'gitRepo', 'glusterfs', 'rbd', 'cephfs', 'fc', 'flexVolume', 'azureDisk', 'azureFile', 'awsElasticBlockStore',
  'gcePersistentDisk', 'vsphereVolume', 'quobyte', 'portworxVolume', 'scaleIO', 'storageos', 'photonPersistentDisk', 'flocker', 'cinder',
];

function checkVolumes(c: Checker, v: unknown): KubeVolume[] {
  const out: KubeVolume[] = [];
  const names = new Set<string>();
  c.array(v, ['spec', 'volumes']).forEach((x, i) => {
    const p = ['spec', 'volumes', i];
    const keys = Object.keys((x as Obj | null) ?? {}).filter((k) => k !== 'name');
    const o = c.object(x, p, ['name', 'emptyDir', 'hostPath'], { unsupported: UNSUPPORTED_VOLUME_SOURCES });
    if (!o) return;
    const name = c.string(o.name, [...p, 'name'], true);
    if (name !== undefined) {
      if (!isDnsLabel(name)) c.error([...p, 'name'], `invalid volume name ${JSON.stringify(name)}: must be an RFC 1123 label`);
      else if (names.has(name)) c.error([...p, 'name'], `duplicate volume name ${JSON.stringify(name)}`);
      names.add(name);
    }
    const sources = keys.filter((k) => o[k] !== undefined);
    if (sources.length !== 1) {
      if (sources.length === 0) c.error(p, 'a volume needs exactly one source (emptyDir or hostPath)');
      else c.error(p, `a volume has exactly one source, got ${sources.join(', ')}`);
      return;
    }
    if ('emptyDir' in o) {
      const e = c.object(o.emptyDir ?? {}, [...p, 'emptyDir'], ['medium', 'sizeLimit']) ?? {};
      const medium = c.enumOf(e.medium, [...p, 'emptyDir', 'medium'], ['', 'Memory'] as const) ?? '';
      const sizeLimitBytes = c.quantity(e.sizeLimit, [...p, 'emptyDir', 'sizeLimit'], 'memory');
      if (name !== undefined) out.push({ name, emptyDir: { medium, ...(sizeLimitBytes !== undefined ? { sizeLimitBytes } : {}) } });
    } else if ('hostPath' in o) {
      const h = c.object(o.hostPath, [...p, 'hostPath'], ['path', 'type']);
      if (!h) {
        c.error([...p, 'hostPath'], 'expected a map with path');
        return;
      }
      const path = c.string(h.path, [...p, 'hostPath', 'path'], true);
      if (path !== undefined && !path.startsWith('/')) c.error([...p, 'hostPath', 'path'], `must be an absolute path, got ${JSON.stringify(path)}`);
      const type = c.enumOf(h.type, [...p, 'hostPath', 'type'], ['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice'] as const) ?? '';
      if (name !== undefined && path !== undefined) out.push({ name, hostPath: { path, type: type as KubeHostPathType } });
    }
  });
  return out;
}

function checkDnsConfig(c: Checker, v: unknown): KubeDnsConfig | undefined {
  const p = ['spec', 'dnsConfig'];
  const o = c.object(v, p, ['nameservers', 'searches', 'options']);
  if (!o) return undefined;
  const nameservers = c.strings(o.nameservers, [...p, 'nameservers']) ?? [];
  nameservers.forEach((ns, i) => {
    if (isIP(ns) === 0) c.error([...p, 'nameservers', i], `invalid IP address ${JSON.stringify(ns)}`);
  });
  const searches = c.strings(o.searches, [...p, 'searches']) ?? [];
  const options = c.array(o.options, [...p, 'options']).flatMap((x, i) => {
    const op = c.object(x, [...p, 'options', i], ['name', 'value']);
    if (!op) return [];
    const name = c.string(op.name, [...p, 'options', i, 'name'], true);
    const value = c.string(op.value, [...p, 'options', i, 'value']);
    return name === undefined ? [] : [{ name, ...(value !== undefined ? { value } : {}) }];
  });
  return { nameservers, searches, options };
}

function checkPodSecurity(c: Checker, v: unknown): KubePodSecurityContext | undefined {
  const p = ['spec', 'securityContext'];
  const o = c.object(v, p, ['runAsUser', 'runAsGroup', 'runAsNonRoot', 'supplementalGroups', 'sysctls'], {
    unsupported: ['fsGroup', 'fsGroupChangePolicy', 'seLinuxOptions', 'seccompProfile', 'appArmorProfile', 'windowsOptions', 'supplementalGroupsPolicy', 'seLinuxChangePolicy'],
  });
  if (!o) return undefined;
  const id = { min: 0, max: 2 ** 31 - 1 };
  const out: KubePodSecurityContext = {};
  const runAsUser = c.int(o.runAsUser, [...p, 'runAsUser'], id);
  const runAsGroup = c.int(o.runAsGroup, [...p, 'runAsGroup'], id);
  const runAsNonRoot = c.bool(o.runAsNonRoot, [...p, 'runAsNonRoot']);
  if (runAsUser !== undefined) out.runAsUser = runAsUser;
  if (runAsGroup !== undefined) out.runAsGroup = runAsGroup;
  if (runAsNonRoot !== undefined) out.runAsNonRoot = runAsNonRoot;
  if (o.supplementalGroups !== undefined) {
    out.supplementalGroups = c.array(o.supplementalGroups, [...p, 'supplementalGroups']).flatMap((g, i) => {
      const n = c.int(g, [...p, 'supplementalGroups', i], id);
      return n === undefined ? [] : [n];
    });
  }
  if (o.sysctls !== undefined) {
    out.sysctls = c.array(o.sysctls, [...p, 'sysctls']).flatMap((x, i) => {
      const s = c.object(x, [...p, 'sysctls', i], ['name', 'value']);
      if (!s) return [];
      const name = c.string(s.name, [...p, 'sysctls', i, 'name'], true);
      const value = c.string(s.value, [...p, 'sysctls', i, 'value'], true);
      return name === undefined || value === undefined ? [] : [{ name, value }];
    });
  }
  return out;
}

const CONTAINER_FIELDS = [
  'name', 'image', 'imagePullPolicy', 'command', 'args', 'env', 'ports', 'workingDir', 'resources', 'securityContext',
  'volumeMounts', 'livenessProbe', 'stdin', 'stdinOnce', 'tty',
];

interface ContainerContext {
  names: Set<string>;
  volumeNames: Set<string>;
  hostNetwork: boolean;
  init: boolean;
}

function checkContainer(c: Checker, v: unknown, p: Path, ctx: ContainerContext): KubeContainer | undefined {
  const o = c.object(v, p, CONTAINER_FIELDS, {
    warn: {
      terminationMessagePath: 'ignored: berth writes no termination message',
      terminationMessagePolicy: 'ignored: berth writes no termination message',
      ...(ctx.init ? {} : { readinessProbe: 'ignored: there are no Services to take the pod out of' }),
    },
    unsupported: ['startupProbe', 'lifecycle', 'envFrom', 'resizePolicy', 'restartPolicy', 'volumeDevices', 'readinessProbe'],
  });
  if (!o) {
    if (v === null || v === undefined) c.error(p, 'expected a container map');
    return undefined;
  }
  const name = c.string(o.name, [...p, 'name'], true);
  if (name !== undefined) {
    if (!isDnsLabel(name)) c.error([...p, 'name'], `invalid container name ${JSON.stringify(name)}: must be an RFC 1123 label (lowercase alphanumerics and '-', at most 63)`);
    else if (ctx.names.has(name)) c.error([...p, 'name'], `duplicate container name ${JSON.stringify(name)}`);
    ctx.names.add(name);
  }
  const image = c.string(o.image, [...p, 'image'], true);
  const imagePullPolicy = c.enumOf(o.imagePullPolicy, [...p, 'imagePullPolicy'], ['Always', 'IfNotPresent', 'Never'] as const);
  const command = c.strings(o.command, [...p, 'command']);
  const args = c.strings(o.args, [...p, 'args']);
  const env = checkEnv(c, o.env, [...p, 'env']);
  const ports = checkPorts(c, o.ports, [...p, 'ports'], ctx.hostNetwork);
  if (ctx.init && ports.length > 0) c.error([...p, 'ports'], 'init containers cannot publish ports');
  const workingDir = c.string(o.workingDir, [...p, 'workingDir']);
  if (workingDir !== undefined && workingDir !== '' && !workingDir.startsWith('/')) c.error([...p, 'workingDir'], `must be an absolute path, got ${JSON.stringify(workingDir)}`);
  const resources = checkResources(c, o.resources, [...p, 'resources']);
  const securityContext = checkContainerSecurity(c, o.securityContext, [...p, 'securityContext']);
  const volumeMounts = checkMounts(c, o.volumeMounts, [...p, 'volumeMounts'], ctx.volumeNames);
  let livenessProbe: KubeProbe | undefined;
  if (o.livenessProbe !== undefined && o.livenessProbe !== null) {
    if (ctx.init) c.error([...p, 'livenessProbe'], 'init containers cannot have a livenessProbe');
    else livenessProbe = checkProbe(c, o.livenessProbe, [...p, 'livenessProbe'], ports);
  }
  const stdin = c.bool(o.stdin, [...p, 'stdin']) ?? false;
  const stdinOnce = c.bool(o.stdinOnce, [...p, 'stdinOnce']) ?? false;
  const tty = c.bool(o.tty, [...p, 'tty']) ?? false;
  if (name === undefined || image === undefined) return undefined;
  return {
    name,
    image,
    ...(imagePullPolicy ? { imagePullPolicy: imagePullPolicy as KubePullPolicy } : {}),
    ...(command ? { command } : {}),
    ...(args ? { args } : {}),
    env,
    ports,
    ...(workingDir ? { workingDir } : {}),
    resources,
    ...(securityContext ? { securityContext } : {}),
    volumeMounts,
    ...(livenessProbe ? { livenessProbe } : {}),
    stdin,
    stdinOnce,
    tty,
  };
}

const FIELD_PATH_RE = /^(metadata\.name|metadata\.namespace|status\.podIP|status\.podIPs|status\.hostIP|spec\.nodeName|metadata\.(labels|annotations)\['[^']+'\])$/;

function checkEnv(c: Checker, v: unknown, p: Path): KubeEnvVar[] {
  return c.array(v, p).flatMap((x, i): KubeEnvVar[] => {
    const ep = [...p, i];
    const o = c.object(x, ep, ['name', 'value', 'valueFrom']);
    if (!o) return [];
    const name = c.string(o.name, [...ep, 'name'], true);
    if (name !== undefined && name.includes('=')) c.error([...ep, 'name'], `invalid variable name ${JSON.stringify(name)}: must not contain '='`);
    const value = c.string(o.value, [...ep, 'value']);
    if (o.valueFrom === undefined || o.valueFrom === null) return name === undefined ? [] : [{ name, value: value ?? '' }];
    if (value !== undefined && value !== '') c.error([...ep, 'valueFrom'], 'value and valueFrom cannot both be set');
    const vf = c.object(o.valueFrom, [...ep, 'valueFrom'], ['fieldRef'], { unsupported: ['secretKeyRef', 'configMapKeyRef', 'resourceFieldRef'] });
    if (!vf) return [];
    if (vf.fieldRef === undefined) {
      if (Object.keys(vf).length === 0) c.error([...ep, 'valueFrom'], 'expected fieldRef');
      return [];
    }
    const fr = c.object(vf.fieldRef, [...ep, 'valueFrom', 'fieldRef'], ['fieldPath', 'apiVersion']);
    if (!fr) return [];
    const apiVersion = c.string(fr.apiVersion, [...ep, 'valueFrom', 'fieldRef', 'apiVersion']);
    if (apiVersion !== undefined && apiVersion !== 'v1') c.error([...ep, 'valueFrom', 'fieldRef', 'apiVersion'], `expected "v1", got ${JSON.stringify(apiVersion)}`);
    const fieldPath = c.string(fr.fieldPath, [...ep, 'valueFrom', 'fieldRef', 'fieldPath'], true);
    if (fieldPath !== undefined && !FIELD_PATH_RE.test(fieldPath)) {
      c.error([...ep, 'valueFrom', 'fieldRef', 'fieldPath'], `unsupported fieldPath ${JSON.stringify(fieldPath)}; berth resolves metadata.name, metadata.namespace, metadata.labels['KEY'], metadata.annotations['KEY'], status.podIP, status.podIPs, status.hostIP, spec.nodeName`);
      return [];
    }
    return name === undefined || fieldPath === undefined ? [] : [{ name, valueFrom: { fieldRef: { fieldPath } } }];
  });
}

function checkPorts(c: Checker, v: unknown, p: Path, hostNetwork: boolean): KubeContainerPort[] {
  const names = new Set<string>();
  const seen = new Set<string>();
  return c.array(v, p).flatMap((x, i): KubeContainerPort[] => {
    const pp = [...p, i];
    const o = c.object(x, pp, ['containerPort', 'hostPort', 'hostIP', 'protocol', 'name']);
    if (!o) return [];
    if (o.containerPort === undefined || o.containerPort === null) c.error([...pp, 'containerPort'], 'required field is missing');
    const containerPort = c.int(o.containerPort, [...pp, 'containerPort'], { min: 1, max: 65535 });
    const hostPort = c.int(o.hostPort, [...pp, 'hostPort'], { min: 0, max: 65535 });
    const hostIP = c.string(o.hostIP, [...pp, 'hostIP']);
    if (hostIP !== undefined && hostIP !== '' && isIP(hostIP) === 0) c.error([...pp, 'hostIP'], `invalid IP address ${JSON.stringify(hostIP)}`);
    if (hostIP && !hostPort) c.warn([...pp, 'hostIP'], 'ignored: the port has no hostPort, so nothing is published');
    let protocol = c.enumOf(o.protocol, [...pp, 'protocol'], ['TCP', 'UDP', 'SCTP'] as const) ?? 'TCP';
    if (protocol === 'SCTP') {
      c.error([...pp, 'protocol'], 'SCTP is not supported by berth; use TCP or UDP');
      protocol = 'TCP';
    }
    const name = c.string(o.name, [...pp, 'name']);
    if (name !== undefined) {
      if (!isPortName(name)) c.error([...pp, 'name'], `invalid port name ${JSON.stringify(name)}: at most 15 lowercase alphanumerics and '-', with a letter`);
      else if (names.has(name)) c.error([...pp, 'name'], `duplicate port name ${JSON.stringify(name)}`);
      names.add(name);
    }
    if (hostNetwork && hostPort && containerPort !== undefined && hostPort !== containerPort) {
      c.error([...pp, 'hostPort'], `with hostNetwork, hostPort must equal containerPort (${containerPort})`);
    }
    if (containerPort === undefined) return [];
    const key = `${containerPort}/${protocol}`;
    if (seen.has(key)) c.error([...pp, 'containerPort'], `duplicate port ${key}`);
    seen.add(key);
    return [{
      containerPort,
      ...(hostPort ? { hostPort } : {}),
      ...(hostIP ? { hostIP } : {}),
      protocol,
      ...(name !== undefined ? { name } : {}),
    }];
  });
}

function checkResourceList(c: Checker, v: unknown, p: Path): KubeResourceList {
  const keys = Object.keys((v as Obj | null) ?? {});
  const o = c.object(v, p, ['cpu', 'memory'], { unsupported: keys.filter((k) => k !== 'cpu' && k !== 'memory' && /^(ephemeral-storage|hugepages-.*|[a-z0-9.-]+\/.+)$/.test(k)) });
  if (!o) return {};
  const out: KubeResourceList = {};
  const cpuMilli = c.quantity(o.cpu, [...p, 'cpu'], 'cpu');
  const memoryBytes = c.quantity(o.memory, [...p, 'memory'], 'memory');
  if (cpuMilli !== undefined) out.cpuMilli = cpuMilli;
  if (memoryBytes !== undefined) out.memoryBytes = memoryBytes;
  return out;
}

function checkResources(c: Checker, v: unknown, p: Path): KubeResources {
  const o = c.object(v, p, ['limits', 'requests'], { unsupported: ['claims'] });
  if (!o) return { limits: {}, requests: {} };
  const limits = checkResourceList(c, o.limits, [...p, 'limits']);
  const requests = checkResourceList(c, o.requests, [...p, 'requests']);
  for (const key of ['cpuMilli', 'memoryBytes'] as const) {
    const l = limits[key];
    const r = requests[key];
    const field = key === 'cpuMilli' ? 'cpu' : 'memory';
    if (l !== undefined && r !== undefined && r > l) c.error([...p, 'requests', field], `request must not exceed the limit`);
    // Kubernetes defaults a missing request to the limit.
    if (l !== undefined && r === undefined) requests[key] = l;
  }
  return { limits, requests };
}

function checkContainerSecurity(c: Checker, v: unknown, p: Path): KubeContainerSecurityContext | undefined {
  const o = c.object(v, p, ['runAsUser', 'runAsGroup', 'runAsNonRoot', 'privileged', 'readOnlyRootFilesystem', 'capabilities', 'allowPrivilegeEscalation'], {
    unsupported: ['seLinuxOptions', 'seccompProfile', 'appArmorProfile', 'procMount', 'windowsOptions'],
  });
  if (!o) return undefined;
  const id = { min: 0, max: 2 ** 31 - 1 };
  const out: KubeContainerSecurityContext = {};
  const set = <K extends keyof KubeContainerSecurityContext>(k: K, value: KubeContainerSecurityContext[K] | undefined): void => {
    if (value !== undefined) out[k] = value;
  };
  set('runAsUser', c.int(o.runAsUser, [...p, 'runAsUser'], id));
  set('runAsGroup', c.int(o.runAsGroup, [...p, 'runAsGroup'], id));
  set('runAsNonRoot', c.bool(o.runAsNonRoot, [...p, 'runAsNonRoot']));
  set('privileged', c.bool(o.privileged, [...p, 'privileged']));
  set('readOnlyRootFilesystem', c.bool(o.readOnlyRootFilesystem, [...p, 'readOnlyRootFilesystem']));
  set('allowPrivilegeEscalation', c.bool(o.allowPrivilegeEscalation, [...p, 'allowPrivilegeEscalation']));
  if (out.privileged && out.allowPrivilegeEscalation === false) c.error([...p, 'allowPrivilegeEscalation'], 'cannot be false when privileged is true');
  const caps = c.object(o.capabilities, [...p, 'capabilities'], ['add', 'drop']);
  if (caps) {
    const list = (key: 'add' | 'drop'): string[] =>
      (c.strings(caps[key], [...p, 'capabilities', key]) ?? []).filter((cap, i) => {
        if (cap === 'ALL' || CAPABILITY_RE.test(cap)) return true;
        c.error([...p, 'capabilities', key, i], `invalid capability ${JSON.stringify(cap)}: expected a name such as NET_ADMIN or ALL`);
        return false;
      });
    out.capabilities = { add: list('add'), drop: list('drop') };
  }
  return out;
}

function checkMounts(c: Checker, v: unknown, p: Path, volumeNames: Set<string>): KubeVolumeMount[] {
  const paths = new Set<string>();
  return c.array(v, p).flatMap((x, i): KubeVolumeMount[] => {
    const mp = [...p, i];
    const o = c.object(x, mp, ['name', 'mountPath', 'readOnly', 'subPath'], { unsupported: ['mountPropagation', 'subPathExpr', 'recursiveReadOnly'] });
    if (!o) return [];
    const name = c.string(o.name, [...mp, 'name'], true);
    if (name !== undefined && !volumeNames.has(name)) c.error([...mp, 'name'], `unknown volume ${JSON.stringify(name)}: not in spec.volumes`);
    const mountPath = c.string(o.mountPath, [...mp, 'mountPath'], true);
    if (mountPath !== undefined) {
      if (!mountPath.startsWith('/')) c.error([...mp, 'mountPath'], `must be an absolute path, got ${JSON.stringify(mountPath)}`);
      else if (paths.has(mountPath)) c.error([...mp, 'mountPath'], `duplicate mountPath ${JSON.stringify(mountPath)}`);
      paths.add(mountPath);
    }
    const readOnly = c.bool(o.readOnly, [...mp, 'readOnly']) ?? false;
    const subPath = c.string(o.subPath, [...mp, 'subPath']);
    if (subPath !== undefined && (subPath.startsWith('/') || subPath.split('/').includes('..'))) {
      c.error([...mp, 'subPath'], `must be a relative path without '..', got ${JSON.stringify(subPath)}`);
    }
    if (name === undefined || mountPath === undefined) return [];
    return [{ name, mountPath, readOnly, ...(subPath ? { subPath } : {}) }];
  });
}

function checkProbe(c: Checker, v: unknown, p: Path, ports: KubeContainerPort[]): KubeProbe | undefined {
  const timing = ['initialDelaySeconds', 'periodSeconds', 'timeoutSeconds', 'failureThreshold', 'successThreshold'];
  const o = c.object(v, p, ['exec', 'httpGet', 'tcpSocket', ...timing], { unsupported: ['grpc', 'terminationGracePeriodSeconds'] });
  if (!o) return undefined;
  const handlers = ['exec', 'httpGet', 'tcpSocket', 'grpc'].filter((k) => o[k] !== undefined && o[k] !== null);
  if (handlers.length !== 1) {
    c.error(p, handlers.length === 0 ? 'a probe needs exactly one of exec, httpGet, tcpSocket' : `a probe has exactly one handler, got ${handlers.join(', ')}`);
    return undefined;
  }
  const port = (value: unknown, pp: Path): number | string | undefined => {
    if (value === undefined || value === null) return c.error(pp, 'required field is missing');
    if (typeof value === 'number') return c.int(value, pp, { min: 1, max: 65535 });
    if (typeof value !== 'string') return c.error(pp, `expected a port number or name, got ${describe(value)}`);
    if (!ports.some((x) => x.name === value)) return c.error(pp, `unknown port name ${JSON.stringify(value)}: not among this container's ports`);
    return value;
  };
  let handler: KubeProbeHandler | undefined;
  if (o.exec !== undefined && o.exec !== null) {
    const e = c.object(o.exec, [...p, 'exec'], ['command']);
    const command = e ? c.strings(e.command, [...p, 'exec', 'command']) : undefined;
    if (e && (!command || command.length === 0)) c.error([...p, 'exec', 'command'], 'required field is missing');
    else if (command) handler = { kind: 'exec', command };
  } else if (o.httpGet !== undefined && o.httpGet !== null) {
    const h = c.object(o.httpGet, [...p, 'httpGet'], ['path', 'port', 'host', 'scheme'], { unsupported: ['httpHeaders'] });
    if (h) {
      const pt = port(h.port, [...p, 'httpGet', 'port']);
      const path = c.string(h.path, [...p, 'httpGet', 'path']) ?? '/';
      const host = c.string(h.host, [...p, 'httpGet', 'host']);
      const scheme = c.enumOf(h.scheme, [...p, 'httpGet', 'scheme'], ['HTTP', 'HTTPS'] as const) ?? 'HTTP';
      if (pt !== undefined) handler = { kind: 'httpGet', path, port: pt, scheme, ...(host ? { host } : {}) };
    }
  } else if (o.tcpSocket !== undefined && o.tcpSocket !== null) {
    const t = c.object(o.tcpSocket, [...p, 'tcpSocket'], ['port', 'host']);
    if (t) {
      const pt = port(t.port, [...p, 'tcpSocket', 'port']);
      const host = c.string(t.host, [...p, 'tcpSocket', 'host']);
      if (pt !== undefined) handler = { kind: 'tcpSocket', port: pt, ...(host ? { host } : {}) };
    }
  } else {
    c.error([...p, 'grpc'], 'not supported by berth');
  }
  const num = (key: string, def: number, min: number): number => c.int(o[key], [...p, key], { min, max: 2 ** 31 - 1 }) ?? def;
  const probe = {
    initialDelaySeconds: num('initialDelaySeconds', 0, 0),
    periodSeconds: num('periodSeconds', 10, 1),
    timeoutSeconds: num('timeoutSeconds', 1, 1),
    failureThreshold: num('failureThreshold', 3, 1),
    successThreshold: num('successThreshold', 1, 1),
  };
  if (probe.successThreshold !== 1) c.error([...p, 'successThreshold'], 'must be 1 for a livenessProbe');
  return handler ? { handler, ...probe } : undefined;
}
