// Atomic file writes: temp file, rename. A kill -9 at any instant leaves either the old or
// the new content, never a torn file. `durable` adds fsync of the file and its directory,
// which only matters for data that must outlive a power loss (/var/lib/berth); runtime
// state under /run describes processes that a reboot ends anyway, so it skips the cost
// (~8 ms per write on this disk).
import { openSync, writeSync, fsyncSync, closeSync, renameSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

export interface WriteOptions {
  mode?: number;
  durable?: boolean;
}

export function writeFileAtomic(path: string, data: string | Uint8Array, opts: WriteOptions = {}): void {
  const { mode = 0o644, durable = true } = opts;
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // the temp file is already gone; the rename error is what matters
    }
    throw err;
  }
  if (!durable) return;
  const dfd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

export function writeJsonAtomic(path: string, value: unknown, opts: WriteOptions = {}): void {
  writeFileAtomic(path, JSON.stringify(value) + '\n', opts);
}

/** Makes a rename or create in `dir` durable (the directory entry itself is on disk). */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
