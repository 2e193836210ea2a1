// The reverse of parse+plan for `berth kube generate POD`: a neutral description of a pod, as
// the engine knows it, written as a v1 Pod manifest. Field order is fixed and empty fields are
// left out, so the same pod always yields the same text.
import { stringify } from 'yaml';
import type { KubeProtocol, KubeRestartPolicy } from './manifest.js';
import type { KubeMountPlan, KubeVolumePlan } from './plan.js';

export interface KubeContainerView {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value: string }[];
  ports?: { containerPort: number; hostPort?: number; hostIP?: string; protocol?: KubeProtocol }[];
  workingDir?: string;
  /** Limits as the engine stores them (HostConfig.Memory / NanoCpus / CpuShares). */
  resources?: { memoryBytes?: number; nanoCpus?: number; cpuShares?: number };
  securityContext?: {
    runAsUser?: number;
    runAsGroup?: number;
    privileged?: boolean;
    readOnlyRootFilesystem?: boolean;
    capAdd?: string[];
    capDrop?: string[];
    allowPrivilegeEscalation?: boolean;
  };
  mounts?: KubeMountPlan[];
  tty?: boolean;
  stdin?: boolean;
}

export interface KubePodView {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  hostname?: string;
  hostNetwork?: boolean;
  shareProcessNamespace?: boolean;
  restartPolicy?: KubeRestartPolicy;
  stopTimeoutSeconds?: number;
  initContainers?: KubeContainerView[];
  containers: KubeContainerView[];
  volumes?: KubeVolumePlan[];
}

const MEMORY_SUFFIXES = [
  ['Ti', 2 ** 40], ['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10], ['T', 1e12], ['G', 1e9], ['M', 1e6], ['k', 1e3],
] as const;

/** Bytes as a Kubernetes quantity: the shortest exact form, binary suffixes winning ties. */
export function formatMemoryQuantity(bytes: number): string {
  let best = String(bytes);
  for (const [suffix, factor] of MEMORY_SUFFIXES) {
    const text = `${bytes / factor}${suffix}`;
    if (bytes >= factor && bytes % factor === 0 && text.length < best.length) best = text;
  }
  return best;
}

/** Millicores as a Kubernetes quantity: "2" or "500m". */
export function formatCpuQuantity(milli: number): string {
  const m = Math.ceil(milli);
  return m % 1000 === 0 ? String(m / 1000) : `${m}m`;
}

type Plain = string | number | boolean | Plain[] | { [k: string]: Plain | undefined } | undefined;

/** Drops undefined values, empty lists and empty maps, keeping key order. */
function prune(v: Plain): Plain {
  if (Array.isArray(v)) {
    const list = v.map(prune).filter((x) => x !== undefined) as Plain[];
    return list.length ? list : undefined;
  }
  if (v !== null && typeof v === 'object') {
    const out: { [k: string]: Plain } = {};
    for (const [k, x] of Object.entries(v)) {
      const p = prune(x);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return v;
}

function containerObject(c: KubeContainerView): Plain {
  const r = c.resources ?? {};
  const s = c.securityContext ?? {};
  return {
    name: c.name,
    image: c.image,
    command: c.command,
    args: c.args,
    workingDir: c.workingDir,
    env: c.env?.map((e) => ({ name: e.name, value: e.value })),
    ports: c.ports?.map((p) => ({
      containerPort: p.containerPort,
      hostPort: p.hostPort || undefined,
      hostIP: p.hostIP || undefined,
      protocol: p.protocol && p.protocol !== 'TCP' ? p.protocol : undefined,
    })),
    resources: {
      limits: {
        cpu: r.nanoCpus ? formatCpuQuantity(r.nanoCpus / 1e6) : undefined,
        memory: r.memoryBytes ? formatMemoryQuantity(r.memoryBytes) : undefined,
      },
      // Shares carry the CPU request; 1024 shares are one CPU (Kubernetes' MilliCPUToShares).
      requests: { cpu: r.cpuShares ? formatCpuQuantity((r.cpuShares * 1000) / 1024) : undefined },
    },
    securityContext: {
      runAsUser: s.runAsUser,
      runAsGroup: s.runAsGroup,
      privileged: s.privileged || undefined,
      readOnlyRootFilesystem: s.readOnlyRootFilesystem || undefined,
      allowPrivilegeEscalation: s.allowPrivilegeEscalation === false ? false : undefined,
      capabilities: { add: s.capAdd, drop: s.capDrop },
    },
    volumeMounts: c.mounts?.map((m) => ({ name: m.volume, mountPath: m.target, readOnly: m.readOnly || undefined, subPath: m.subPath })),
    stdin: c.stdin || undefined,
    tty: c.tty || undefined,
  };
}

function volumeObject(v: KubeVolumePlan): Plain {
  if (v.kind === 'hostPath') return { name: v.name, hostPath: { path: v.path, type: v.type || undefined } };
  // An emptyDir with no options is `emptyDir: {}`, which prune would drop: keep the key.
  const options = prune({ medium: v.medium === 'memory' ? 'Memory' : undefined, sizeLimit: v.sizeBytes ? formatMemoryQuantity(v.sizeBytes) : undefined });
  return { name: v.name, emptyDir: options ?? ({} as { [k: string]: Plain }) };
}

/** A v1 Pod manifest (YAML text, one document) for a pod. */
export function generatePodManifest(view: KubePodView): string {
  const volumes = view.volumes?.map(volumeObject);
  const doc = prune({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: view.name,
      namespace: view.namespace && view.namespace !== 'default' ? view.namespace : undefined,
      labels: view.labels,
      annotations: view.annotations,
    },
    spec: {
      hostname: view.hostname,
      hostNetwork: view.hostNetwork || undefined,
      shareProcessNamespace: view.shareProcessNamespace || undefined,
      restartPolicy: view.restartPolicy,
      terminationGracePeriodSeconds: view.stopTimeoutSeconds,
      initContainers: view.initContainers?.map(containerObject),
      containers: view.containers.map(containerObject),
      volumes: undefined,
    },
  }) as { spec: { [k: string]: Plain } };
  // Added after pruning so an option-less `emptyDir: {}` survives.
  if (volumes?.length) doc.spec.volumes = volumes;
  // kubectl's layout: sequence items level with their key.
  return stringify(doc, { lineWidth: 0, indentSeq: false });
}
