// Layer decompression while streaming. The format comes from the magic bytes, not from the
// media type: registries and `docker save` mislabel layers often enough (gzip layers named
// .tar, plain tars named +gzip) that the bytes are the only reliable witness.
// gzip runs in node:zlib; zstd in a `zstd -dc` child, since Node 20's zlib has no zstd.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BerthError } from '../../errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface DecompressOptions {
  /** Only a hint; the magic bytes decide. */
  mediaType?: string;
  /** Names the layer in errors, e.g. 'layer sha256:…'. */
  where?: string;
  signal?: AbortSignal;
  /** The `zstd` binary (default: found in PATH). */
  zstdPath?: string;
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
// zlib hands each output chunk from libuv's threadpool back to the main thread: 1 MiB
// chunks instead of 64 KiB make gunzip ~25% faster and cost ~20% less CPU here.
const CHUNK = 1024 * 1024;
const STDERR_KEEP = 4096;

export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head.subarray(0, 2).equals(GZIP_MAGIC)) return 'gzip';
  if (head.length >= 4 && head.subarray(0, 4).equals(ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new DOMException('The operation was aborted', 'AbortError');
}

/**
 * The uncompressed bytes of `stream`. Errors (corrupt data, a missing zstd, an abort) destroy
 * the returned stream with a BerthError naming `where`; destroying the returned stream stops
 * the work (and kills zstd).
 */
export function decompress(stream: Readable, optsOrMediaType: DecompressOptions | string = {}): Readable {
  const opts: DecompressOptions = typeof optsOrMediaType === 'string' ? { mediaType: optsOrMediaType } : optsOrMediaType;
  const where = opts.where ?? 'layer';
  const out = new PassThrough({ highWaterMark: CHUNK });
  const it = stream[Symbol.asyncIterator]();
  const controller = new AbortController();
  const onAbort = (): void => {
    out.destroy(abortReason(opts.signal!));
    controller.abort();
  };
  if (opts.signal?.aborted) {
    queueMicrotask(onAbort);
    return out;
  }
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  out.once('close', () => {
    opts.signal?.removeEventListener('abort', onAbort);
    controller.abort();
    if (!stream.destroyed) stream.destroy();
  });

  const run = async (): Promise<void> => {
    let head: Buffer = Buffer.alloc(0);
    while (head.length < 4) {
      const r = await it.next();
      if (r.done) break;
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as string);
      head = head.length === 0 ? b : Buffer.concat([head, b]);
    }
    const kind = detectCompression(head);
    const source = Readable.from(
      (async function* () {
        try {
          if (head.length > 0) yield head;
          for (;;) {
            const r = await it.next();
            if (r.done) return;
            yield r.value as Buffer;
          }
        } finally {
          await it.return?.();
        }
      })(),
      { objectMode: false },
    );
    const sink = (from: AsyncIterable<unknown>): Promise<void> => copyInto(from, out, controller.signal);
    if (kind === 'none') await pipeline(source, sink, { signal: controller.signal });
    else if (kind === 'gzip') await pipeline(source, createGunzip({ chunkSize: CHUNK }), sink, { signal: controller.signal });
    else await unzstd(source, sink, { where, zstdPath: opts.zstdPath ?? 'zstd', signal: controller.signal });
    out.end();
  };
  run().catch((err: unknown) => {
    if (out.destroyed) return;
    out.destroy(describe(err, where, opts.mediaType));
  });
  return out;
}

/**
 * Writes into `out` with backpressure. `out` stays out of the pipelines on purpose: a
 * pipeline would destroy it with the raw zlib/pipe error before it could be described.
 */
async function copyInto(from: AsyncIterable<unknown>, out: PassThrough, signal: AbortSignal): Promise<void> {
  for await (const chunk of from) {
    if (!out.write(chunk)) await once(out, 'drain', { signal });
  }
}

function describe(err: unknown, where: string, mediaType: string | undefined): Error {
  if (err instanceof BerthError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.name === 'AbortError') return e;
  if (typeof e?.code === 'string' && e.code.startsWith('Z_')) {
    return new BerthError('InvalidArgument', `${where}: gzip data is corrupt: ${e.message}`, {
      cause: err,
      hint: mediaType ? `media type ${mediaType}; fetch the layer again` : 'fetch the layer again',
    });
  }
  return new BerthError('Internal', `${where}: decompressing failed: ${e?.message ?? String(err)}`, { cause: err });
}

async function unzstd(
  source: Readable,
  sink: (from: AsyncIterable<unknown>) => Promise<void>,
  opts: { where: string; zstdPath: string; signal: AbortSignal },
): Promise<void> {
  const child = spawn(opts.zstdPath, ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-STDERR_KEEP);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  opts.signal.addEventListener('abort', kill, { once: true });
  try {
    const feeding = pipeline(source, child.stdin).catch((err: NodeJS.ErrnoException) => {
      // zstd stops reading when the data is bad; its exit status tells the real story.
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_PREMATURE_CLOSE') throw err;
    });
    const draining = sink(child.stdout);
    const [status] = await Promise.all([
      exited.catch((err: NodeJS.ErrnoException) => {
        kill();
        if (err.code === 'ENOENT') {
          throw new BerthError('FailedPrecondition', `${opts.where}: the layer is zstd-compressed but "${opts.zstdPath}" is not installed`, {
            cause: err,
            hint: 'install the Debian package zstd',
          });
        }
        throw err;
      }),
      feeding,
      draining,
    ]);
    if (status.code !== 0) {
      const why = stderr.trim() || (status.signal ? `killed by ${status.signal}` : `exit status ${status.code}`);
      throw new BerthError('InvalidArgument', `${opts.where}: zstd data is corrupt: ${why}`, { hint: 'fetch the layer again' });
    }
  } catch (err) {
    kill();
    source.destroy();
    throw err;
  } finally {
    opts.signal.removeEventListener('abort', kill);
  }
}
