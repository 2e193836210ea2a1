// A container as berthd keeps it: one directory per container under <root>/containers/<id>/
// holding container.json (this record), the OCI config.json, the generated /etc files and the
// log. Written atomically, so that a kill -9 of berthd at any point leaves a loadable record.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../../errors.js';
import { writeJsonAtomic } from '../../host/fs-atomic.js';
import type { ContainerConfig, ContainerState, CreateContainerRequest, HealthLogEntry, HostConfig, MountPoint } from '../types.js';
import type { EndpointRequest, Sandbox } from '../../network/types.js';

export interface ContainerRecord {
  id: string;
  /** Without the leading '/'. */
  name: string;
  created: string;
  /** The effective config (the image's merged with the request's), as inspect shows it. */
  config: ContainerConfig;
  hostConfig: HostConfig;
  /** The request as the client sent it (the spec is rebuilt from it on update). */
  request: CreateContainerRequest;
  /** sha256:<config digest>. */
  image: string;
  /** A name the image service resolves to exactly this image (to mount the rootfs again). */
  imageRef: string;
  imageName: string;
  path: string;
  args: string[];
  mounts: MountPoint[];
  /** Anonymous volumes made for this container (removed with `rm -v`). */
  anonymousVolumes: string[];
  state: {
    status: ContainerState['Status'];
    pid: number;
    exitCode: number;
    error: string;
    oomKilled: boolean;
    startedAt: string;
    finishedAt: string;
    health?: { status: 'starting' | 'healthy' | 'unhealthy'; failingStreak: number; log: HealthLogEntry[] };
  };
  restartCount: number;
  /** Set by stop/kill from the user: unless-stopped and always then do not restart (until the next start). */
  manuallyStopped: boolean;
  /** The snapshot key of the container's writable layer. */
  snapshotKey: string;
  warnings?: string[];
  /** The networks it joins, in order (eth0 first), once connect/disconnect changed them; unset: as NetworkMode and EndpointsConfig say. */
  networks?: EndpointRequest[];
  /** Its network namespace and endpoints while it runs on bridge/cni networks (handed back to the network layer at exit and at berthd's restart). */
  sandbox?: Sandbox;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export class ContainerStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
    mkdirSync(root, { recursive: true, mode: 0o700 });
  }

  dir(id: string): string {
    return join(this.root, id);
  }

  rootfs(id: string): string {
    return join(this.root, id, 'rootfs');
  }

  logPath(id: string): string {
    return join(this.root, id, `${id}-json.log`);
  }

  /**
   * State changes (start, exit, health) skip the fsync: the rename keeps the record whole
   * across a crash of berthd, and after a power loss every container is gone anyway, so an
   * older state on disk is still a state berthd can load. The first record is durable.
   */
  save(rec: ContainerRecord, opts: { durable?: boolean } = {}): void {
    writeJsonAtomic(join(this.dir(rec.id), 'container.json'), rec, { durable: opts.durable ?? false });
  }

  /** Every loadable record; directories without one (a create that crashed early) are returned in `orphans`. */
  loadAll(): { records: ContainerRecord[]; orphans: string[]; broken: { id: string; error: string }[] } {
    const records: ContainerRecord[] = [];
    const orphans: string[] = [];
    const broken: { id: string; error: string }[] = [];
    for (const id of readdirSync(this.root)) {
      const file = join(this.root, id, 'container.json');
      if (!existsSync(file)) {
        orphans.push(id);
        continue;
      }
      try {
        records.push(JSON.parse(readFileSync(file, 'utf8')) as ContainerRecord);
      } catch (err) {
        broken.push({ id, error: err instanceof Error ? err.message : String(err) });
      }
    }
    return { records, orphans, broken };
  }

  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }

  /** Drops the record only (one unlink): loadAll then sees the directory as an orphan. */
  forget(id: string): void {
    rmSync(join(this.dir(id), 'container.json'), { force: true });
  }
}

export function noSuchContainer(idOrName: string): BerthError {
  return new BerthError('NotFound', `No such container: ${idOrName}`);
}
