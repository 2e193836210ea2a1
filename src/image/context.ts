// The parts every image operation works on. The service builds one from its root
// directory; tests build one from temp dirs and fakes.
import type { RegistryClient } from './registry/client.js';
import type { Snapshotter } from './snapshots/snapshotter.js';
import type { ContentStore } from './store/content-store.js';
import type { ImageStore } from './store/image-store.js';
import type { LeaseStore } from './store/leases.js';

export interface ImageContext {
  content: ContentStore;
  images: ImageStore;
  leases: LeaseStore;
  snapshots: Snapshotter;
  registry: RegistryClient;
}
