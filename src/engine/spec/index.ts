// Docker's create request → OCI runtime spec, and the files and checks around it.
export {
  buildContainerSpec,
  renderContainerFiles,
  statHostPath,
  DEFAULT_SHM_SIZE,
  INIT_PATH_IN_CONTAINER,
  DOCKER_MASKED_PATHS,
  DOCKER_READONLY_PATHS,
  type SpecInput,
  type BuiltContainerSpec,
  type HostNetworkFiles,
} from './build.js';
export { mergeConfig, commandOf, processEnv, replaceOrAppendEnv, DEFAULT_PATH_ENV, type ProcessEnvOptions } from './merge.js';
export { resolveUser, parsePasswd, parseGroup, type ExecUser, type ResolveUserOptions, type PasswdEntry, type GroupEntry } from './user.js';
export { readFileInRoot, resolveInRoot } from './rootfs-files.js';
export { renderHosts, renderResolvConf, renderHostname, parseExtraHosts, type HostsOptions, type ResolvConfOptions, type ExtraHost } from './generated-files.js';
export { buildUserMounts, parseBind, parseTmpfsOptions, containerDestination, randomVolumeName, sortMounts, type VolumeUse, type HostPathKind, type UserMount, type ParsedBind, type MountsInput, type MountsResult } from './mounts.js';
export { buildResources, buildRlimits, buildDevices, parseDeviceRule, DEFAULT_ULIMITS, type ResourcesResult, type DevicesResult } from './resources.js';
export { effectiveCapabilities, parseSecurityOpts, dockerSeccompToOci, seccompFor, type SecurityOptions, type SeccompProfileOptions } from './security.js';
export { planNamespaces, type NamespacePlan, type NamespaceOptions, type JoinKind, type JoinTarget, type ContainerResolver, type NetworkKind, type IpcKind } from './namespaces.js';
export { parseLogConfig, refuseUnsupported, validateConfig, parseSignal, parseByteSize, DEFAULT_LOG_MAX_SIZE, DEFAULT_LOG_MAX_FILE, type LogSettings } from './validate.js';
export { readHostDevices, splitDev, type HostDevice, type HostDevices, type SpecHostFacts } from './host-facts.js';
export { buildExecProcess, type ExecProcessInput } from './exec.js';
export { applyResourceUpdate, type ResourceUpdate } from './update.js';
