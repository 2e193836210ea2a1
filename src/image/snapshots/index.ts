// Snapshots: committed layer stacks and containers' writable root filesystems.
export { createSnapshotter, overlaySupported, type Mount, type LayerWriter, type Snapshotter, type SnapshotterKind, type SnapshotInfo } from './snapshotter.js';
export { OverlaySnapshotter } from './overlay.js';
export { CopySnapshotter, copyTree } from './copy.js';
export { mountAll, unmountAll } from './mount.js';
