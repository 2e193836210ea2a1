// One layer blob → one directory: decompress while streaming, hash the uncompressed tar
// (its sha256 is the layer's diffID, which the caller compares with the image config) and
// apply the entries. The tar reader consumes the stream to its very end, past the
// end-of-archive marker, so the hash covers every byte as diffIDs require.
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../../errors.js';
import type { Digest } from '../types.js';
import { applyLayer, type LayerFormat } from './apply-layer.js';
import { decompress } from './decompress.js';

export interface UnpackLayerOptions {
  dir: string;
  format: LayerFormat;
  /** A hint only: the compression is detected from the bytes. */
  mediaType?: string;
  signal?: AbortSignal;
  /** Limit on the uncompressed tar size (and so on the content), against decompression bombs. */
  maxBytes?: number;
  /** Names the layer in errors, e.g. 'layer sha256:…' (the default names nothing better). */
  where?: string;
  /** See ApplyLayerOptions.chown. */
  chown?: boolean;
  onWarning?(message: string): void;
}

export interface UnpackLayerResult {
  /** sha256 of the uncompressed tar. */
  diffId: Digest;
  /** Bytes of the uncompressed tar. */
  size: number;
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
}

export async function unpackLayer(stream: Readable, opts: UnpackLayerOptions): Promise<UnpackLayerResult> {
  const where = opts.where ?? 'layer';
  const plain = decompress(stream, { mediaType: opts.mediaType, where, signal: opts.signal });
  const hash = createHash('sha256');
  let size = 0;
  const max = opts.maxBytes;
  const tap = new Transform({
    highWaterMark: 64 * 1024,
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      size += chunk.length;
      if (max !== undefined && size > max) {
        done(
          new BerthError('InvalidArgument', `${where}: the uncompressed layer is larger than the limit of ${max} bytes`, {
            hint: 'the layer is too large or a decompression bomb',
          }),
        );
        return;
      }
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const piping = pipeline(plain, tap);
  // Marked handled now: it may fail while applyLayer is still running; it is awaited below.
  piping.catch(() => {});
  let applied;
  try {
    applied = await applyLayer(tap, {
      dir: opts.dir,
      format: opts.format,
      signal: opts.signal,
      where,
      maxBytes: opts.maxBytes,
      chown: opts.chown,
      onWarning: opts.onWarning,
    });
  } catch (err) {
    plain.destroy();
    stream.destroy();
    // The apply error is the one worth reporting; the pipeline's is its echo.
    await piping.catch(() => {});
    throw err;
  }
  await piping;
  return { diffId: `sha256:${hash.digest('hex')}`, size, entries: applied.entries, bytes: applied.bytes };
}
