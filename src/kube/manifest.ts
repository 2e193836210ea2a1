// Kubernetes v1 Pod manifests as berth reads them: the typed subset of the Pod object that berth
// supports (see validate.ts for what happens to every other field) and the reader that splits a
// file into documents and validates each.
import { readFile } from 'node:fs/promises';
import { BerthError } from '../errors.js';
import { parseYamlDocuments, formatYamlPath } from './yaml.js';
import { validatePodObject, type KubeIssue } from './validate.js';

export type KubeProtocol = 'TCP' | 'UDP';
export type KubeRestartPolicy = 'Always' | 'OnFailure' | 'Never';
export type KubeHostPathType =
  | ''
  | 'DirectoryOrCreate'
  | 'Directory'
  | 'FileOrCreate'
  | 'File'
  | 'Socket'
  | 'CharDevice'
  | 'BlockDevice';
export type KubePullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface KubeObjectMeta {
  name: string;
  /** "default" when absent. */
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface KubeFieldRef {
  /** metadata.name, metadata.namespace, metadata.labels['k'], metadata.annotations['k'], status.podIP, status.podIPs, status.hostIP, spec.nodeName */
  fieldPath: string;
}

export interface KubeEnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef: KubeFieldRef };
}

export interface KubeContainerPort {
  containerPort: number;
  /** 0 or absent: not published on the host. */
  hostPort?: number;
  hostIP?: string;
  protocol: KubeProtocol;
  name?: string;
}

/** Quantities already converted: cpu in millicores, memory in bytes. */
export interface KubeResourceList {
  cpuMilli?: number;
  memoryBytes?: number;
}

export interface KubeResources {
  limits: KubeResourceList;
  requests: KubeResourceList;
}

export interface KubeCapabilities {
  add: string[];
  drop: string[];
}

export interface KubeContainerSecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  privileged?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: KubeCapabilities;
  allowPrivilegeEscalation?: boolean;
}

export interface KubePodSecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  supplementalGroups?: number[];
  sysctls?: { name: string; value: string }[];
}

export interface KubeVolumeMount {
  name: string;
  mountPath: string;
  readOnly: boolean;
  subPath?: string;
}

export type KubeProbeHandler =
  | { kind: 'exec'; command: string[] }
  | { kind: 'httpGet'; path: string; port: number | string; host?: string; scheme: 'HTTP' | 'HTTPS' }
  | { kind: 'tcpSocket'; port: number | string; host?: string };

export interface KubeProbe {
  handler: KubeProbeHandler;
  /** Kubernetes' defaults filled in: 0, 10, 1, 3, 1. */
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
  successThreshold: number;
}

export interface KubeContainer {
  name: string;
  image: string;
  imagePullPolicy?: KubePullPolicy;
  command?: string[];
  args?: string[];
  env: KubeEnvVar[];
  ports: KubeContainerPort[];
  workingDir?: string;
  resources: KubeResources;
  securityContext?: KubeContainerSecurityContext;
  volumeMounts: KubeVolumeMount[];
  livenessProbe?: KubeProbe;
  stdin: boolean;
  stdinOnce: boolean;
  tty: boolean;
}

export type KubeVolume =
  | { name: string; emptyDir: { medium: '' | 'Memory'; sizeLimitBytes?: number } }
  | { name: string; hostPath: { path: string; type: KubeHostPathType } };

export interface KubeDnsConfig {
  nameservers: string[];
  searches: string[];
  options: { name: string; value?: string }[];
}

export interface KubePodSpec {
  containers: KubeContainer[];
  initContainers: KubeContainer[];
  volumes: KubeVolume[];
  /** "Always" when absent. */
  restartPolicy: KubeRestartPolicy;
  hostname?: string;
  hostNetwork: boolean;
  shareProcessNamespace: boolean;
  dnsPolicy?: 'ClusterFirst' | 'Default' | 'None' | 'ClusterFirstWithHostNet';
  dnsConfig?: KubeDnsConfig;
  hostAliases: { ip: string; hostnames: string[] }[];
  securityContext?: KubePodSecurityContext;
  /** Kubernetes' default 30 when absent. */
  terminationGracePeriodSeconds: number;
}

export interface KubePod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: KubeObjectMeta;
  spec: KubePodSpec;
}

export interface KubeManifestDocument {
  /** 0-based index in the file, counting empty documents. */
  index: number;
  pod: KubePod;
  /** Fields that were read but have no effect in berth, by path (`status`, `metadata.uid`, …). */
  warnings: string[];
}

export interface ParseManifestOptions {
  /** Named in error messages; "<input>" when absent. */
  file?: string;
}

/** Parses and validates every Pod in a YAML stream; empty documents are skipped. */
export function parsePodManifests(text: string, options: ParseManifestOptions = {}): KubeManifestDocument[] {
  const file = options.file ?? '<input>';
  const out: KubeManifestDocument[] = [];
  for (const doc of parseYamlDocuments(text, file)) {
    if (doc.value === null || doc.value === undefined) continue;
    const result = validatePodObject(doc.value);
    // Reported in the order a reader meets them in the file.
    const byLine = (list: KubeIssue[]): KubeIssue[] =>
      list
        .map((issue, i) => ({ issue, i, line: doc.lineOf(issue.path) ?? Number.MAX_SAFE_INTEGER }))
        .sort((a, b) => a.line - b.line || a.i - b.i)
        .map((x) => x.issue);
    result.errors = byLine(result.errors);
    result.warnings = byLine(result.warnings);
    if (result.errors.length > 0) {
      const where = (issue: KubeIssue): string => {
        const line = doc.lineOf(issue.path);
        const path = issue.path.length === 0 ? '(document)' : formatYamlPath(issue.path);
        return `${path}: ${issue.message}${line === undefined ? '' : ` (line ${line})`}`;
      };
      const n = result.errors.length;
      throw new BerthError(
        'InvalidArgument',
        `${file}: document ${doc.index}: ${n} error${n === 1 ? '' : 's'}:\n  ${result.errors.map(where).join('\n  ')}`,
        { hint: 'fix the fields named above; berth supports a subset of v1 Pod fields and names each one it does not' },
      );
    }
    out.push({
      index: doc.index,
      pod: result.pod!,
      warnings: result.warnings.map((w) => `${formatYamlPath(w.path)}: ${w.message}`),
    });
  }
  const seen = new Map<string, number>();
  for (const d of out) {
    const key = `${d.pod.metadata.namespace}/${d.pod.metadata.name}`;
    const first = seen.get(key);
    if (first !== undefined) {
      throw new BerthError('InvalidArgument', `${file}: document ${d.index}: metadata.name: pod ${JSON.stringify(d.pod.metadata.name)} is already defined in document ${first}`, {
        hint: 'give every pod in the file its own name',
      });
    }
    seen.set(key, d.index);
  }
  if (out.length === 0) {
    throw new BerthError('InvalidArgument', `${file}: no Pod documents found`, { hint: 'the file must hold at least one `kind: Pod` document' });
  }
  return out;
}

/** Reads a manifest file and parses it with parsePodManifests. */
export async function readPodManifests(file: string): Promise<KubeManifestDocument[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BerthError(code === 'ENOENT' ? 'NotFound' : 'InvalidArgument', `cannot read manifest ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parsePodManifests(text, { file });
}
