// CNI: plugin chains (ADD/CHECK/DEL per the CNI specification) with a result cache.
export { parseConflist, loadConflist, compareCniVersions, CNI_VERSIONS, type CniConflist } from './conflist.js';
export {
  CniRunner,
  CniPluginError,
  normalizeResult,
  pluginConfig,
  formatCniArgs,
  type CniRunnerOptions,
  type CniResult,
  type CniAttachment,
  type CniCapabilityArgs,
  type CniPortMapping,
  type CniCacheEntry,
  type CniCommand,
} from './runner.js';
