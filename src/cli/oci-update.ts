// `berth-oci update`: resources from --resources (file or -) and/or the runc flags.
import { readFileSync } from 'node:fs';
import { BerthError } from '../errors.js';
import type { Resources } from '../runtime/spec.js';
import type { Parsed } from './args.js';
import { validateSpec } from '../runtime/validate.js';

interface Readers {
  int: (p: Parsed, name: string, where: string) => number | undefined;
  size: (p: Parsed, name: string, where: string) => number | undefined;
  str: (p: Parsed, name: string) => string | undefined;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

export async function resourcesFromUpdateFlags(p: Parsed, r: Readers): Promise<Resources> {
  const w = 'update';
  let res: Resources = {};
  const file = r.str(p, 'resources');
  if (file !== undefined) {
    const text = file === '-' ? await readAll(process.stdin) : readFileSync(file, 'utf8');
    try {
      res = JSON.parse(text) as Resources;
    } catch (err) {
      throw new BerthError('InvalidArgument', `update: --resources ${file}: invalid JSON: ${(err as Error).message}`);
    }
    if (!res || typeof res !== 'object' || Array.isArray(res)) throw new BerthError('InvalidArgument', `update: --resources ${file}: expected a JSON object of linux.resources`);
  }
  const set = <K extends keyof Resources>(key: K, patch: Record<string, unknown>) => {
    const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    if (Object.keys(defined).length) (res as Record<string, unknown>)[key] = { ...(res[key] as object), ...defined };
  };
  set('memory', {
    limit: r.size(p, 'memory', w),
    reservation: r.size(p, 'memory-reservation', w),
    swap: r.size(p, 'memory-swap', w),
    kernel: r.size(p, 'kernel-memory', w),
    kernelTCP: r.size(p, 'kernel-memory-tcp', w),
  });
  set('cpu', {
    period: r.int(p, 'cpu-period', w),
    quota: r.int(p, 'cpu-quota', w),
    shares: r.int(p, 'cpu-share', w),
    realtimePeriod: r.int(p, 'cpu-rt-period', w),
    realtimeRuntime: r.int(p, 'cpu-rt-runtime', w),
    cpus: r.str(p, 'cpuset-cpus'),
    mems: r.str(p, 'cpuset-mems'),
  });
  const pids = r.int(p, 'pids-limit', w);
  if (pids !== undefined) res.pids = { limit: pids };
  const weight = r.int(p, 'blkio-weight', w);
  if (weight !== undefined) res.blockIO = { ...res.blockIO, weight };
  if (r.str(p, 'l3-cache-schema') !== undefined || r.str(p, 'mem-bw-schema') !== undefined)
    throw new BerthError('FailedPrecondition', 'update: Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported on this host');
  // Checked like a config's linux.resources: a wrong type must not silently lift a limit.
  return validateSpec({ ociVersion: '1.0.0', root: { path: '/' }, linux: { resources: res } }, 'update').linux!.resources!;
}
