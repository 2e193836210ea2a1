// The container state store: one directory per container under the runtime root
// (runc's layout: <root>/<id>/state.json, <root>/<id>/exec.fifo). Status is derived
// from the process, the fifo and the freezer (operations/context.ts), never stored.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../errors.js';
import { writeJsonAtomic } from '../host/fs-atomic.js';
import type { Spec, State } from './spec.js';
import { OCI_VERSION } from './spec.js';

export type Status = State['status'];

export const DEFAULT_ROOT = '/run/berth-oci';

export interface ContainerRecord {
  id: string;
  bundle: string;
  rootfs: string;
  /** Host pid of the container's init; 0 while creating. */
  pid: number;
  /** /proc/<pid>/stat start time, to recognise a recycled pid. */
  pidStartTime?: number;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
  /** The config the container was created with (exec and hooks need it later). */
  config: Spec;
  /** Serialised cgroup manager (src/runtime/cgroups). */
  cgroup?: unknown;
  /** Set by `start`; "created" vs "running" is otherwise whether exec.fifo exists. */
  started?: boolean;
}

const ID_RE = /^[\w+\-.]+$/;

export function validateId(id: string | undefined): string {
  if (!id) throw new BerthError('InvalidArgument', 'container id cannot be empty', { hint: 'pass the container id as the last argument' });
  if (!ID_RE.test(id) || id === '.' || id === '..' || id.length > 1024)
    throw new BerthError('InvalidArgument', `invalid container id "${id}": use letters, digits, "_", "+", "-" and "."`);
  return id;
}

export class StateStore {
  constructor(readonly root: string = DEFAULT_ROOT) {}

  dir(id: string): string {
    return join(this.root, validateId(id));
  }

  fifoPath(id: string): string {
    return join(this.dir(id), 'exec.fifo');
  }

  /** Reserves the id atomically (mkdir); AlreadyExists when taken. */
  reserve(id: string): string {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const dir = this.dir(id);
    try {
      mkdirSync(dir, { mode: 0o711 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST')
        throw new BerthError('AlreadyExists', `container "${id}" already exists`, { hint: `delete it first: berth-oci delete ${id}` });
      throw err;
    }
    return dir;
  }

  save(rec: ContainerRecord): void {
    writeJsonAtomic(join(this.dir(rec.id), 'state.json'), rec, { mode: 0o600, durable: false });
  }

  load(id: string): ContainerRecord {
    const file = join(this.dir(id), 'state.json');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new BerthError('NotFound', `container "${id}" does not exist`, { hint: `no state in ${this.root}; see berth-oci list` });
      throw err;
    }
    try {
      return JSON.parse(text) as ContainerRecord;
    } catch (err) {
      throw new BerthError('Internal', `${file}: corrupt state file`, { cause: err, hint: `remove ${this.dir(id)} by hand` });
    }
  }

  exists(id: string): boolean {
    return existsSync(join(this.dir(id), 'state.json'));
  }

  ids(): string[] {
    try {
      return readdirSync(this.root)
        .filter((n) => ID_RE.test(n) && existsSync(join(this.root, n, 'state.json')))
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  remove(id: string): void {
    const dir = this.dir(id);
    // What create leaves (state.json, exec.fifo) goes with one call each; anything else
    // (a temp file of a crashed save) falls to the recursive removal.
    for (const name of ['state.json', 'exec.fifo']) {
      try {
        unlinkSync(join(dir, name));
      } catch {
        // absent, or the recursive removal below reports it
      }
    }
    try {
      rmdirSync(dir);
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** The OCI state document (what `state` prints and hooks receive). */
  ociState(rec: ContainerRecord, status: Status): State & { rootfs: string; created: string; owner: string } {
    const running = status !== 'stopped' && status !== 'creating';
    return {
      ociVersion: OCI_VERSION,
      id: rec.id,
      pid: running ? rec.pid : 0,
      status,
      bundle: rec.bundle,
      rootfs: rec.rootfs,
      created: rec.created,
      annotations: rec.annotations ?? {},
      owner: rec.owner,
    };
  }
}
