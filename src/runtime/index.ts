// The OCI runtime library: what higher layers (the daemon, the CLI) use.
export * from './operations/index.js';
export type * from './spec.js';
export { OCI_VERSION } from './spec.js';
export { parseSpec, validateSpec } from './validate.js';
export { defaultSpec, type DefaultSpecOptions } from './default-spec.js';
export { compileCreate, compileExec, effectiveDeviceRules, type CompileOptions, type ExecCompileOptions, type HostFacts, type Compiled } from './compile.js';
export { encodePlan, decodePlan, formatPlan, Op, type Plan, type PlanOp } from './plan.js';
export { launch, exitCodeOf, execBinaryPath, type LaunchOptions, type Launched } from './exec-channel.js';
export { StateStore, DEFAULT_ROOT, validateId, type ContainerRecord, type Status } from './state.js';
export { features, type Features } from './features.js';
export { compileSeccomp, defaultSeccompProfile } from './seccomp.js';
export { CAPABILITIES, DEFAULT_CAPABILITIES, capabilityMask, capabilityNames } from './capabilities.js';
export { createCgroupManager, loadCgroupManager, discoverCgroupHost, type CgroupManager } from './cgroups/index.js';
