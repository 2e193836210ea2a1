// Kernel-facing helpers shared by every layer.
export { readProcStat, parseProcStat, processAlive, listPids, readLinkOr, waitForExit, type ProcStat } from './proc.js';
export { writeFileAtomic, writeJsonAtomic, fsyncDir, type WriteOptions } from './fs-atomic.js';
export {
  mknod,
  lsetxattr,
  lgetxattr,
  llistxattr,
  mount,
  umount2,
  mountOverlay,
  MS_RDONLY,
  MS_BIND,
  MS_REC,
  MNT_DETACH,
  type OverlayOptions,
} from './sys.js';
export {
  createNetns,
  removeNetns,
  ensureSharedDir,
  ensureBridge,
  deleteLink,
  deleteLinkAsync,
  listLinks,
  addVeth,
  setSysctl,
  nftApply,
  netlinkAvailable,
  nftAvailable,
  sysctlPath,
  randomMac,
  type LinkInfo,
  type BridgeOptions,
  type VethOptions,
  type NftApplyOptions,
} from './netlink.js';
export { applyNft, listNftTable, nftBackend, runCommand, runIptables, type CommandResult, type IptablesRunner, type NftListing } from './nft.js';
