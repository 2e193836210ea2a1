// Content digests (`algorithm:hex`) as the image-spec defines them. Only sha256 and
// sha512 are registered; anything else is refused where it enters berth.
import { createHash, type Hash } from 'node:crypto';
import { BerthError } from '../errors.js';
import type { Digest } from './types.js';

const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

export interface ParsedDigest {
  algorithm: 'sha256' | 'sha512';
  hex: string;
}

/** Validates a digest; `where` names the document or field it came from for the message. */
export function parseDigest(value: string, where = 'digest'): ParsedDigest {
  const colon = value.indexOf(':');
  const algorithm = colon > 0 ? value.slice(0, colon) : '';
  const hex = value.slice(colon + 1);
  const expected = HEX_LENGTH[algorithm];
  if (expected === undefined) {
    throw new BerthError('InvalidArgument', `${where}: "${value}" is not a digest: unsupported algorithm "${algorithm}"`, {
      hint: 'expected sha256:<64 hex digits>',
    });
  }
  if (hex.length !== expected || !/^[a-f0-9]+$/.test(hex)) {
    throw new BerthError('InvalidArgument', `${where}: "${value}" is not a digest: ${algorithm} needs ${expected} lowercase hex digits`);
  }
  return { algorithm: algorithm as ParsedDigest['algorithm'], hex };
}

export function isDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function digestHasher(digest: Digest): Hash {
  return createHash(parseDigest(digest).algorithm);
}

export function sha256Digest(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * The chain ID of a layer stack (image-spec config.md): the first layer's is its diffID,
 * each next one is sha256 of "<parent chain ID> <diffID>".
 */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const diffId of diffIds) {
    const parent = out.at(-1);
    out.push(parent === undefined ? diffId : sha256Digest(`${parent} ${diffId}`));
  }
  return out;
}
