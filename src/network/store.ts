// Network records, one JSON file each under `<root>/network/networks/<id>.json`, written
// atomically. A corrupt or foreign file is skipped with a warning naming it, so one bad
// file does not keep berthd from starting.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../host/fs-atomic.js';
import type { NetworkRecord } from './types.js';

const ID = /^[0-9a-f]{64}$/;

function isRecord(v: unknown): v is NetworkRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<NetworkRecord>;
  return (
    typeof r.id === 'string' &&
    ID.test(r.id) &&
    typeof r.name === 'string' &&
    typeof r.driver === 'string' &&
    Array.isArray(r.subnets) &&
    typeof r.options === 'object' &&
    typeof r.labels === 'object'
  );
}

export class NetworkStore {
  readonly dir: string;

  constructor(
    root: string,
    private readonly warn: (m: string) => void = () => {},
  ) {
    this.dir = join(root, 'network', 'networks');
  }

  /** Every valid record; creates the directory on first use. */
  loadAll(): NetworkRecord[] {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const out: NetworkRecord[] = [];
    for (const entry of readdirSync(this.dir)) {
      if (!entry.endsWith('.json') || entry.startsWith('.')) continue;
      const path = join(this.dir, entry);
      let value: unknown;
      try {
        value = JSON.parse(readFileSync(path, 'utf8'));
      } catch (err) {
        this.warn(`network record ${path} is unreadable and was skipped: ${(err as Error).message}`);
        continue;
      }
      if (!isRecord(value) || `${value.id}.json` !== entry) {
        this.warn(`network record ${path} is not a valid network record and was skipped`);
        continue;
      }
      out.push(value);
    }
    return out;
  }

  save(rec: NetworkRecord): void {
    writeJsonAtomic(join(this.dir, `${rec.id}.json`), rec, { mode: 0o600 });
  }

  delete(id: string): void {
    rmSync(join(this.dir, `${id}.json`), { force: true });
  }
}
