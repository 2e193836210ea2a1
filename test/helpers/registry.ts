// Starts a real registry for tests: Debian's docker-registry (docker/distribution 2.8) on
// 127.0.0.1 with its storage in a temp dir, anonymous, with htpasswd basic auth, or with
// bearer tokens from a small token server written here (a JWT signed ES256 by a key whose
// self-signed certificate, made with the openssl CLI, is the registry's rootcertbundle).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createSign, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface TokenServerCounters {
  /** Token requests received. */
  requests: number;
  /** Tokens handed out. */
  issued: number;
  /** Requests refused for bad credentials. */
  denied: number;
}

export interface StartedRegistry {
  /** 127.0.0.1:port, as it appears in image references. */
  host: string;
  stop(): Promise<void>;
  tokenServer?: TokenServerCounters & { url: string };
  /** The registry's own log (stderr), for failure messages. */
  log(): string;
  /** The temp dir holding config, storage and keys (gone after stop). */
  dir: string;
  pid: number;
}

export interface StartRegistryOptions {
  auth?: 'none' | 'htpasswd' | 'token';
  /** user → password for htpasswd and token auth. */
  users?: Record<string, string>;
  /** token auth: anonymous requests may pull (default false). */
  anonymousPull?: boolean;
  /** token auth: token lifetime in seconds (default 300). */
  expiresIn?: number;
}

/** Why this host cannot run the registry tests, or undefined when it can. */
export function registryUnavailable(): string | undefined {
  if (!existsSync(REGISTRY_BIN)) return `${REGISTRY_BIN} is not installed (apt-get install docker-registry)`;
  return undefined;
}

const SERVICE = 'berth-test-registry';
const ISSUER = 'berth-test-token-issuer';

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<StartedRegistry> {
  const why = registryUnavailable();
  if (why) throw new Error(why);
  const auth = opts.auth ?? 'none';
  const users = opts.users ?? {};
  const dir = mkdtempSync(join(tmpdir(), 'berth-registry-'));
  let tokenServer: TokenServer | undefined;
  let child: ChildProcess | undefined;
  let stderr = '';
  const cleanup = async (): Promise<void> => {
    if (child) await stopProcess(child);
    if (tokenServer) await tokenServer.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    let authYaml = '';
    if (auth === 'htpasswd') {
      if (Object.keys(users).length === 0) throw new Error('htpasswd auth needs at least one user');
      const lines: string[] = [];
      for (const [user, password] of Object.entries(users)) {
        lines.push((await run('htpasswd', ['-Bbn', user, password])).stdout.trim());
      }
      writeFileSync(join(dir, 'htpasswd'), `${lines.join('\n')}\n`);
      authYaml = ['auth:', '  htpasswd:', '    realm: berth-test', `    path: ${join(dir, 'htpasswd')}`].join('\n');
    } else if (auth === 'token') {
      const keyFile = join(dir, 'token.key');
      const certFile = join(dir, 'token.crt');
      await run('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=berth-test-token-signer',
      ]);
      tokenServer = await TokenServer.start({
        key: createPrivateKey(readFileSync(keyFile)),
        cert: new X509Certificate(readFileSync(certFile)),
        users,
        anonymousPull: opts.anonymousPull ?? false,
        expiresIn: opts.expiresIn ?? 300,
      });
      authYaml = [
        'auth:',
        '  token:',
        `    realm: ${tokenServer.url}`,
        `    service: ${SERVICE}`,
        `    issuer: ${ISSUER}`,
        `    rootcertbundle: ${certFile}`,
      ].join('\n');
    }

    // The registry binds the port itself; a port that was just free can be taken again in
    // between, so a failed start is retried on another one.
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const config = [
        'version: 0.1',
        'log:',
        '  level: warn',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${join(dir, 'data')}`,
        '  delete:',
        '    enabled: true',
        '  maintenance:',
        '    uploadpurging:',
        '      enabled: false',
        'http:',
        `  addr: 127.0.0.1:${port}`,
        `  secret: ${randomBytes(16).toString('hex')}`,
        'health:',
        '  storagedriver:',
        '    enabled: false',
        authYaml,
        '',
      ].join('\n');
      writeFileSync(join(dir, 'config.yml'), config);
      stderr = '';
      const proc = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
      });
      child = proc;
      proc.stdout!.on('data', (d: Buffer) => (stderr += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const up = await waitUntilServing(proc, port, 15_000);
      if (up === 'up') {
        const host = `127.0.0.1:${port}`;
        return {
          host,
          log: () => stderr,
          dir,
          pid: proc.pid!,
          tokenServer: tokenServer ? tokenServer.counters() : undefined,
          stop: cleanup,
        };
      }
      await stopProcess(proc);
      child = undefined;
      if (attempt >= 2 || !/address already in use/.test(stderr)) {
        throw new Error(`docker-registry did not start (${up}): ${stderr.slice(-2000)}`);
      }
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function waitUntilServing(proc: ChildProcess, port: number, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) return `exited with ${proc.exitCode ?? proc.signalCode}`;
    const status = await new Promise<number>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v2/', timeout: 1000, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
      req.on('timeout', () => req.destroy());
    });
    if (status === 200 || status === 401) return 'up';
    await new Promise((r) => setTimeout(r, 50));
  }
  return `no answer on 127.0.0.1:${port}/v2/ within ${timeoutMs} ms`;
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface TokenServerOptions {
  key: KeyObject;
  cert: X509Certificate;
  users: Record<string, string>;
  anonymousPull: boolean;
  expiresIn: number;
}

/** The token service of the distribution token-auth spec, just enough for tests. */
class TokenServer {
  private readonly stats: TokenServerCounters = { requests: 0, issued: 0, denied: 0 };
  url = '';

  private constructor(
    private readonly server: http.Server,
    private readonly opts: TokenServerOptions,
  ) {}

  static async start(opts: TokenServerOptions): Promise<TokenServer> {
    const server = http.createServer();
    const ts = new TokenServer(server, opts);
    server.on('request', (req, res) => ts.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    ts.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
    return ts;
  }

  /** Live counters (the object updates as requests come in). */
  counters(): TokenServerCounters & { url: string } {
    const stats = this.stats;
    const url = this.url;
    return {
      url,
      get requests() {
        return stats.requests;
      },
      get issued() {
        return stats.issued;
      },
      get denied() {
        return stats.denied;
      },
    };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests++;
    const url = new URL(req.url ?? '/', 'http://token');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let user: string | undefined;
      let scopes: string[];
      if (req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        if (form.get('grant_type') !== 'password') return this.deny(res, 400, 'unsupported grant type');
        user = this.check(form.get('username') ?? '', form.get('password') ?? '');
        if (!user) return this.deny(res, 401, 'incorrect username or password');
      } else {
        scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
        const given = req.headers.authorization ?? '';
        if (given) {
          const decoded = given.startsWith('Basic ') ? Buffer.from(given.slice(6), 'base64').toString() : '';
          const colon = decoded.indexOf(':');
          user = colon > 0 ? this.check(decoded.slice(0, colon), decoded.slice(colon + 1)) : undefined;
          if (!user) return this.deny(res, 401, 'incorrect username or password');
        }
      }
      const access = scopes.flatMap((s) => {
        const m = /^repository:([^:]+):([\w,]+)$/.exec(s);
        if (!m) return [];
        const actions = m[2]!.split(',').filter((a) => user !== undefined || (this.opts.anonymousPull && a === 'pull'));
        return actions.length ? [{ type: 'repository', name: m[1]!, actions }] : [];
      });
      const token = this.sign(user ?? '', access, url.searchParams.get('service') ?? SERVICE);
      this.stats.issued++;
      const body = JSON.stringify({ token, access_token: token, expires_in: this.opts.expiresIn, issued_at: new Date().toISOString() });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  }

  private check(user: string, password: string): string | undefined {
    return this.opts.users[user] !== undefined && this.opts.users[user] === password ? user : undefined;
  }

  private deny(res: ServerResponse, status: number, details: string): void {
    this.stats.denied++;
    const body = JSON.stringify({ details });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private sign(subject: string, access: Array<{ type: string; name: string; actions: string[] }>, audience: string): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [this.opts.cert.raw.toString('base64')] };
    const claims = {
      iss: ISSUER,
      sub: subject,
      aud: audience,
      exp: now + this.opts.expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${b64(header)}.${b64(claims)}`;
    // JWS ES256 wants the raw r||s pair, not DER.
    const signature = createSign('SHA256').update(input).sign({ key: this.opts.key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  }
}
