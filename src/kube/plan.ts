// Turns a validated KubePod into a neutral plan the pod engine executes: what to pin and share,
// what to publish, which cgroup limits, which volumes, and one Docker-shaped create request per
// container. Nothing here touches the host. Values that exist only once the pod's network is up
// (status.podIP) and the host paths of emptyDir volumes are filled in by resolveContainerRequest.
import { posix } from 'node:path';
import type { CreateContainerRequest, HostConfig, HealthConfig, MountSpec, RestartPolicy } from '../engine/types.js';
import type {
  KubePod,
  KubeContainer,
  KubeEnvVar,
  KubeProtocol,
  KubeRestartPolicy,
  KubeHostPathType,
  KubePullPolicy,
} from './manifest.js';

export type KubeNamespaceKind = 'net' | 'ipc' | 'uts' | 'pid';

export interface KubePortPlan {
  container: string;
  containerPort: number;
  hostPort: number;
  /** "" means every host address. */
  hostIP: string;
  protocol: KubeProtocol;
}

export type KubeVolumePlan =
  | { name: string; kind: 'emptyDir'; medium: 'disk' | 'memory'; sizeBytes?: number }
  | { name: string; kind: 'hostPath'; path: string; type: KubeHostPathType };

export interface KubeMountPlan {
  volume: string;
  target: string;
  readOnly: boolean;
  subPath?: string;
}

export type KubeProbeAction =
  | { kind: 'exec'; command: string[] }
  | { kind: 'httpGet'; port: number; path: string; scheme: 'HTTP' | 'HTTPS'; host?: string }
  | { kind: 'tcpSocket'; port: number; host?: string };

export interface KubeProbePlan {
  action: KubeProbeAction;
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
}

export interface KubeCgroupPlan {
  memoryBytes?: number;
  nanoCpus?: number;
  cpuShares?: number;
}

export interface KubeContainerPlan {
  /** The name in the manifest. */
  name: string;
  /** berth's container name: `<pod>-<name>`, as Podman names pod members. */
  containerName: string;
  init: boolean;
  pullPolicy: KubePullPolicy;
  /** Create request without Env and Mounts; resolveContainerRequest completes it. */
  request: CreateContainerRequest;
  /** In manifest order; fieldRefs and $(VAR) references resolve in resolveContainerRequest. */
  env: KubeEnvVar[];
  mounts: KubeMountPlan[];
  /** Every livenessProbe, exec ones included (they are also the request's Healthcheck). */
  liveness?: KubeProbePlan;
  /** runAsNonRoot without runAsUser: the engine must refuse an image whose user is root. */
  requireNonRoot: boolean;
}

export interface KubePodPlan {
  name: string;
  namespace: string;
  hostname: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Namespaces the pod pins and its containers join (net and uts are the host's with hostNetwork). */
  sharedNamespaces: KubeNamespaceKind[];
  hostNetwork: boolean;
  /** Container ports with a hostPort; empty with hostNetwork, where ports are the host's already. */
  ports: KubePortPlan[];
  restartPolicy: KubeRestartPolicy;
  stopTimeoutSeconds: number;
  /** Pod-level cgroup: Kubernetes' effective pod resources, max(largest init container, sum of the others). */
  cgroup: KubeCgroupPlan;
  volumes: KubeVolumePlan[];
  dns?: { policy?: string; nameservers: string[]; searches: string[]; options: string[] };
  /** "host:ip" entries for /etc/hosts, as HostConfig.ExtraHosts. */
  extraHosts: string[];
  sysctls: Record<string, string>;
  /** Run in order, each to completion, before `containers` start. */
  initContainers: KubeContainerPlan[];
  containers: KubeContainerPlan[];
  /** The manifest's ignored fields (KubeManifestDocument.warnings), for the front end to print. */
  warnings: string[];
}

/** What is known only when the pod runs. */
export interface KubeRuntimeContext {
  podIP?: string;
  podIPs?: string[];
  hostIP?: string;
  nodeName?: string;
  /** Host directory of each emptyDir volume, created by the engine. */
  volumeSources: Record<string, string>;
}

export const POD_NAME_LABEL = 'io.kubernetes.pod.name';
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const CONTAINER_NAME_LABEL = 'io.kubernetes.container.name';
export const INIT_CONTAINER_LABEL = 'io.berth.kube.init';

const NS_PER_SECOND = 1e9;

/** Kubernetes' MilliCPUToShares: a request of 1 CPU is 1024 shares, never fewer than 2. */
export function milliCpuToShares(milli: number): number {
  return Math.max(2, Math.floor((milli * 1024) / 1000));
}

const RESTART: Record<KubeRestartPolicy, RestartPolicy> = {
  Always: { Name: 'always' },
  OnFailure: { Name: 'on-failure' },
  Never: { Name: 'no' },
};

/** Plans a validated pod; `warnings` (from its KubeManifestDocument) travel with the plan. */
export function planPod(pod: KubePod, warnings: readonly string[] = []): KubePodPlan {
  const { metadata, spec } = pod;
  const hostname = spec.hostname ?? metadata.name.slice(0, 63).replace(/[.-]+$/, '');
  const shared: KubeNamespaceKind[] = spec.hostNetwork ? ['ipc'] : ['net', 'ipc', 'uts'];
  if (spec.shareProcessNamespace) shared.push('pid');
  const base = { pod, hostname };
  const plan: KubePodPlan = {
    name: metadata.name,
    namespace: metadata.namespace,
    hostname,
    labels: { ...metadata.labels },
    annotations: { ...metadata.annotations },
    sharedNamespaces: shared,
    hostNetwork: spec.hostNetwork,
    ports: spec.hostNetwork
      ? []
      : spec.containers.flatMap((c) =>
          c.ports
            .filter((p) => p.hostPort)
            .map((p) => ({ container: c.name, containerPort: p.containerPort, hostPort: p.hostPort!, hostIP: p.hostIP ?? '', protocol: p.protocol })),
        ),
    restartPolicy: spec.restartPolicy,
    stopTimeoutSeconds: spec.terminationGracePeriodSeconds,
    cgroup: podCgroup(pod),
    volumes: spec.volumes.map((v): KubeVolumePlan =>
      'emptyDir' in v
        ? { name: v.name, kind: 'emptyDir', medium: v.emptyDir.medium === 'Memory' ? 'memory' : 'disk', ...(v.emptyDir.sizeLimitBytes !== undefined ? { sizeBytes: v.emptyDir.sizeLimitBytes } : {}) }
        : { name: v.name, kind: 'hostPath', path: v.hostPath.path, type: v.hostPath.type },
    ),
    extraHosts: spec.hostAliases.flatMap((a) => a.hostnames.map((h) => `${h}:${a.ip}`)),
    sysctls: Object.fromEntries((spec.securityContext?.sysctls ?? []).map((s) => [s.name, s.value])),
    initContainers: spec.initContainers.map((c) => planContainer(base, c, true)),
    containers: spec.containers.map((c) => planContainer(base, c, false)),
    warnings: [...warnings],
  };
  if (spec.dnsConfig || spec.dnsPolicy) {
    plan.dns = {
      ...(spec.dnsPolicy ? { policy: spec.dnsPolicy } : {}),
      nameservers: spec.dnsConfig?.nameservers ?? [],
      searches: spec.dnsConfig?.searches ?? [],
      options: (spec.dnsConfig?.options ?? []).map((o) => (o.value === undefined ? o.name : `${o.name}:${o.value}`)),
    };
  }
  return plan;
}

function podCgroup(pod: KubePod): KubeCgroupPlan {
  const { containers, initContainers } = pod.spec;
  const all = [...containers, ...initContainers];
  const out: KubeCgroupPlan = {};
  const effective = (pick: (c: KubeContainer) => number | undefined): number => {
    const sum = containers.reduce((n, c) => n + (pick(c) ?? 0), 0);
    return Math.max(sum, ...initContainers.map((c) => pick(c) ?? 0));
  };
  // A pod is limited only when every container is: one unlimited container makes the pod unlimited.
  if (all.every((c) => c.resources.limits.memoryBytes !== undefined)) out.memoryBytes = effective((c) => c.resources.limits.memoryBytes);
  if (all.every((c) => c.resources.limits.cpuMilli !== undefined)) out.nanoCpus = effective((c) => c.resources.limits.cpuMilli) * 1e6;
  if (all.some((c) => c.resources.requests.cpuMilli !== undefined)) out.cpuShares = milliCpuToShares(effective((c) => c.resources.requests.cpuMilli));
  return out;
}

function planContainer(base: { pod: KubePod; hostname: string }, c: KubeContainer, init: boolean): KubeContainerPlan {
  const { pod, hostname } = base;
  const podSec = pod.spec.securityContext;
  const sec = c.securityContext;
  const host: HostConfig = {
    RestartPolicy: init ? { Name: 'no' } : RESTART[pod.spec.restartPolicy],
  };
  const { limits, requests } = c.resources;
  if (limits.memoryBytes !== undefined) host.Memory = limits.memoryBytes;
  if (limits.cpuMilli !== undefined) host.NanoCpus = limits.cpuMilli * 1e6;
  if (requests.cpuMilli !== undefined) host.CpuShares = milliCpuToShares(requests.cpuMilli);
  if (sec?.privileged) host.Privileged = true;
  if (sec?.readOnlyRootFilesystem) host.ReadonlyRootfs = true;
  if (sec?.capabilities?.add.length) host.CapAdd = [...sec.capabilities.add];
  if (sec?.capabilities?.drop.length) host.CapDrop = [...sec.capabilities.drop];
  if (sec?.allowPrivilegeEscalation === false) host.SecurityOpt = ['no-new-privileges'];
  if (podSec?.supplementalGroups?.length) host.GroupAdd = podSec.supplementalGroups.map(String);

  const request: CreateContainerRequest = {
    Image: c.image,
    Hostname: hostname,
    Labels: {
      [POD_NAME_LABEL]: pod.metadata.name,
      [POD_NAMESPACE_LABEL]: pod.metadata.namespace,
      [CONTAINER_NAME_LABEL]: c.name,
      ...(init ? { [INIT_CONTAINER_LABEL]: 'true' } : {}),
    },
    StopTimeout: pod.spec.terminationGracePeriodSeconds,
    HostConfig: host,
  };
  // Kubernetes: command replaces the image's ENTRYPOINT (and with it its CMD), args replace CMD.
  if (c.command?.length) request.Entrypoint = [...c.command];
  if (c.args?.length) request.Cmd = [...c.args];
  if (c.workingDir) request.WorkingDir = c.workingDir;
  const user = sec?.runAsUser ?? podSec?.runAsUser;
  const group = sec?.runAsGroup ?? podSec?.runAsGroup;
  if (user !== undefined) request.User = group === undefined ? String(user) : `${user}:${group}`;
  if (c.tty) request.Tty = true;
  if (c.stdin) {
    request.OpenStdin = true;
    request.AttachStdin = true;
    if (c.stdinOnce) request.StdinOnce = true;
  }
  const exposed = c.ports.map((p) => `${p.containerPort}/${p.protocol.toLowerCase()}`);
  if (exposed.length) request.ExposedPorts = Object.fromEntries(exposed.map((k) => [k, {}]));

  const liveness = c.livenessProbe ? planProbe(c) : undefined;
  if (liveness?.action.kind === 'exec') request.Healthcheck = healthcheckOf(liveness);

  return {
    name: c.name,
    containerName: `${pod.metadata.name}-${c.name}`,
    init,
    pullPolicy: c.imagePullPolicy ?? defaultPullPolicy(c.image),
    request,
    env: c.env.map((e) => ({ ...e })),
    mounts: c.volumeMounts.map((m) => ({ volume: m.name, target: m.mountPath, readOnly: m.readOnly, ...(m.subPath ? { subPath: m.subPath } : {}) })),
    ...(liveness ? { liveness } : {}),
    requireNonRoot: (sec?.runAsNonRoot ?? podSec?.runAsNonRoot ?? false) && user === undefined,
  };
}

/** Kubernetes' default: Always for `:latest` or an untagged image, IfNotPresent otherwise. */
function defaultPullPolicy(image: string): KubePullPolicy {
  if (image.includes('@')) return 'IfNotPresent';
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const colon = lastSegment.indexOf(':');
  return colon < 0 || lastSegment.slice(colon + 1) === 'latest' ? 'Always' : 'IfNotPresent';
}

function planProbe(c: KubeContainer): KubeProbePlan {
  const p = c.livenessProbe!;
  const portOf = (port: number | string): number => (typeof port === 'number' ? port : c.ports.find((x) => x.name === port)!.containerPort);
  const h = p.handler;
  const action: KubeProbeAction =
    h.kind === 'exec'
      ? { kind: 'exec', command: [...h.command] }
      : h.kind === 'httpGet'
        ? { kind: 'httpGet', port: portOf(h.port), path: h.path, scheme: h.scheme, ...(h.host ? { host: h.host } : {}) }
        : { kind: 'tcpSocket', port: portOf(h.port), ...(h.host ? { host: h.host } : {}) };
  return {
    action,
    initialDelaySeconds: p.initialDelaySeconds,
    periodSeconds: p.periodSeconds,
    timeoutSeconds: p.timeoutSeconds,
    failureThreshold: p.failureThreshold,
  };
}

/**
 * Docker's nearest equivalent of an exec livenessProbe. Docker marks the container unhealthy but
 * never restarts it; restarting on failure is the engine's job (see KubeContainerPlan.liveness).
 */
function healthcheckOf(p: KubeProbePlan): HealthConfig {
  return {
    Test: ['CMD', ...(p.action as { command: string[] }).command],
    Interval: p.periodSeconds * NS_PER_SECOND,
    Timeout: p.timeoutSeconds * NS_PER_SECOND,
    ...(p.initialDelaySeconds > 0 ? { StartPeriod: p.initialDelaySeconds * NS_PER_SECOND } : {}),
    Retries: p.failureThreshold,
  };
}

/**
 * Kubernetes' $(VAR) expansion: a defined variable is replaced, `$$` escapes a `$`, and a
 * reference to an undefined variable stays as written.
 */
export function expandKubeVars(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const ch = input[i]!;
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      continue;
    }
    const next = input[i + 1]!;
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const end = input.indexOf(')', i + 2);
      if (end < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, end);
      const value = lookup(name);
      out += value ?? input.slice(i, end + 1);
      i = end;
    } else {
      out += ch;
    }
  }
  return out;
}

/** The value of a fieldRef, or undefined when the context does not know it yet. */
export function resolveFieldRef(plan: KubePodPlan, fieldPath: string, ctx: Omit<KubeRuntimeContext, 'volumeSources'>): string | undefined {
  switch (fieldPath) {
    case 'metadata.name':
      return plan.name;
    case 'metadata.namespace':
      return plan.namespace;
    case 'status.podIP':
      return ctx.podIP;
    case 'status.podIPs':
      return ctx.podIPs?.join(',') ?? ctx.podIP;
    case 'status.hostIP':
      return ctx.hostIP;
    case 'spec.nodeName':
      return ctx.nodeName;
  }
  const m = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (m) return (m[1] === 'labels' ? plan.labels : plan.annotations)[m[2]!] ?? '';
  return undefined;
}

/**
 * The complete create request of one planned container: Env with fieldRefs and $(VAR)
 * references resolved (Entrypoint and Cmd expanded the same way), and Mounts binding each
 * volume's host path. Throws a plain Error for a volume without a source: that is a bug in
 * the caller, which must create every emptyDir first.
 */
export function resolveContainerRequest(plan: KubePodPlan, container: KubeContainerPlan, ctx: KubeRuntimeContext): CreateContainerRequest {
  const values = new Map<string, string>();
  const env: string[] = [];
  for (const e of container.env) {
    const raw = e.valueFrom ? resolveFieldRef(plan, e.valueFrom.fieldRef.fieldPath, ctx) ?? '' : expandKubeVars(e.value ?? '', (n) => values.get(n));
    values.set(e.name, raw);
  }
  for (const [name, value] of values) env.push(`${name}=${value}`);
  const lookup = (n: string): string | undefined => values.get(n);
  const mounts: MountSpec[] = container.mounts.map((m) => {
    const volume = plan.volumes.find((v) => v.name === m.volume);
    const source = volume?.kind === 'hostPath' ? volume.path : ctx.volumeSources[m.volume];
    if (source === undefined) throw new Error(`kube: no host path for volume ${m.volume} of container ${container.name}`);
    return { Type: 'bind', Source: m.subPath ? posix.join(source, m.subPath) : source, Target: m.target, ReadOnly: m.readOnly };
  });
  const req: CreateContainerRequest = { ...container.request, HostConfig: { ...container.request.HostConfig } };
  if (env.length) req.Env = env;
  if (req.Entrypoint) req.Entrypoint = req.Entrypoint.map((s) => expandKubeVars(s, lookup));
  if (req.Cmd) req.Cmd = req.Cmd.map((s) => expandKubeVars(s, lookup));
  if (mounts.length) req.HostConfig!.Mounts = mounts;
  return req;
}
