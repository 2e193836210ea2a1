// Plain distribution-API requests for the benchmark, independent of berth's registry client:
// a monolithic uploader (POST an upload, PUT its Location with ?digest=, PUT the manifest) and
// the download floor (GET every blob and throw the bytes away). Loopback only: every request,
// including an upload Location the registry hands back, must go to 127.0.0.1.
import { createReadStream } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';

export interface UploadBlob {
  digest: string;
  size: number;
  file: string;
}

export interface UploadImageOptions {
  /** 127.0.0.1:port */
  host: string;
  repository: string;
  tag: string;
  blobs: UploadBlob[];
  manifest: Buffer;
  manifestMediaType: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

/** Pushes blobs (skipping those the registry has) and then the manifest under the tag. */
export async function uploadImage(opts: UploadImageOptions): Promise<void> {
  const base = loopbackBase(opts.host);
  for (const blob of opts.blobs) {
    const head = await send({ method: 'HEAD', url: new URL(`/v2/${opts.repository}/blobs/${blob.digest}`, base) });
    if (head.status === 200) continue;
    const start = await send({ method: 'POST', url: new URL(`/v2/${opts.repository}/blobs/uploads/`, base), body: Buffer.alloc(0) });
    if (start.status !== 202 || !start.location) throw new Error(`POST upload of ${blob.digest}: HTTP ${start.status} ${start.text}`);
    const put = new URL(start.location, base);
    if (put.origin !== base.origin) throw new Error(`the registry sent the upload of ${blob.digest} to ${put.origin}, not ${base.origin}`);
    put.searchParams.set('digest', blob.digest);
    const done = await send({
      method: 'PUT',
      url: put,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      file: blob.file,
    });
    if (done.status !== 201) throw new Error(`PUT upload of ${blob.digest}: HTTP ${done.status} ${done.text}`);
  }
  const m = await send({
    method: 'PUT',
    url: new URL(`/v2/${opts.repository}/manifests/${opts.tag}`, base),
    headers: { 'content-type': opts.manifestMediaType, 'content-length': String(opts.manifest.length) },
    body: opts.manifest,
  });
  if (m.status !== 201) throw new Error(`PUT manifest ${opts.repository}:${opts.tag}: HTTP ${m.status} ${m.text}`);
}

/** GETs every blob, `concurrency` at a time, discarding the bytes; returns the bytes read. */
export async function fetchBlobs(opts: { host: string; repository: string; digests: string[]; concurrency: number }): Promise<number> {
  const base = loopbackBase(opts.host);
  const queue = [...opts.digests];
  let total = 0;
  const worker = async (): Promise<void> => {
    for (let digest = queue.shift(); digest !== undefined; digest = queue.shift()) {
      const url = new URL(`/v2/${opts.repository}/blobs/${digest}`, base);
      total += await new Promise<number>((resolve, reject) => {
        const req = http.request(url, { method: 'GET', agent }, (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
            return;
          }
          let n = 0;
          res.on('data', (d: Buffer) => (n += d.length));
          res.on('end', () => resolve(n));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, worker));
  return total;
}

function loopbackBase(host: string): URL {
  const base = new URL(`http://${host}/`);
  if (base.hostname !== '127.0.0.1') throw new Error(`the benchmark only talks to 127.0.0.1, not ${host}`);
  return base;
}

interface Answer {
  status: number;
  location?: string;
  text: string;
}

function send(req: { method: string; url: URL; headers?: Record<string, string>; body?: Buffer; file?: string }): Promise<Answer> {
  if (req.url.hostname !== '127.0.0.1') return Promise.reject(new Error(`refusing to send to ${req.url.origin}`));
  return new Promise((resolve, reject) => {
    const r = http.request(req.url, { method: req.method, headers: req.headers, agent }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, text: Buffer.concat(chunks).toString().slice(0, 500) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    if (req.file) {
      const src = createReadStream(req.file);
      src.on('error', (err) => r.destroy(err));
      src.pipe(r);
    } else {
      r.end(req.body);
    }
  });
}

/** Closes the keep-alive connections so the process can exit. */
export function closeConnections(): void {
  agent.destroy();
}
