// The image layer: references, the content store, the registry client, unpacking into
// snapshots, archives, and the ImageService that composes them for the engine.
export { ImageService, DEFAULT_IMAGE_ROOT, type ImageServiceOptions, type ResolvedImage, type ImageSummary } from './service.js';
export { pullImage, type PullOptions, type PullResult } from './pull.js';
export { pushImage, type PushOptions, type PushResult } from './push.js';
export type { ImageContext } from './context.js';
export type { ProgressEvent } from './progress.js';
export { shortId } from './progress.js';
export { parseReference, formatReference, repositoryName, familiarName, type Reference } from './reference.js';
export { parseDigest, isDigest, sha256Digest, chainIds, type ParsedDigest } from './digest.js';
export { parseImageConfig, parseManifest, parseIndex, runtimeView, detectManifestKind, type RuntimeView } from './image-config.js';
export * from './types.js';
export * from './registry/index.js';
export * from './snapshots/index.js';
export { ContentStore, type BlobInfo, type BlobOpener, type IngestOptions } from './store/content-store.js';
export { ImageStore, type ImageRecord } from './store/image-store.js';
export { LeaseStore, type Lease, type LeaseResource } from './store/leases.js';
export { collectGarbage, type GcResult } from './store/gc.js';
export { readTar, TarWriter, type TarEntry } from './unpack/tar.js';
export { decompress, detectCompression, type Compression } from './unpack/decompress.js';
export { applyLayer } from './unpack/apply-layer.js';
export { unpackLayer } from './unpack/unpack-layer.js';
export { loadArchive, loadDockerArchive, saveDockerArchive } from './archive/docker-archive.js';
export { loadOciLayout, saveOciLayout, type LoadResult, type LoadedImage } from './archive/oci-layout.js';
export { importRootfsTarball, type ImportRootfsOptions, type CreatedImage } from './archive/import-rootfs.js';
export { imageFromDirectory, type FromDirectoryOptions } from './archive/from-directory.js';
