// Registry authentication: the WWW-Authenticate challenge of a 401, bearer tokens from the
// registry's token service (docker/distribution "token" and "oauth" specs), and basic auth.
// Tokens are cached per (realm, service, scopes, identity) until they expire, and
// concurrent requests for the same token share one fetch (a pull asks for many layers at once).
import { BerthError } from '../../errors.js';
import type { Credential } from './credentials.js';
import { readBody, readErrorText, type HttpTransport } from './http.js';
import { connectionError, isAbort, isConnectionError, registryMessage, RegistryError, LOGIN_HINT } from './registry-error.js';

export interface Challenge {
  /** Lower-case scheme: 'bearer', 'basic', … */
  scheme: string;
  /** Parameter names lower-cased, values unquoted. */
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate value (RFC 7235): one or more challenges, each a scheme followed
 * by comma-separated name=value pairs whose values may be quoted strings containing commas.
 */
export function parseWwwAuthenticate(value: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = value.length;
  const skipSpace = (): void => {
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && !/[\s,=]/.test(value[i]!)) i++;
    return value.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipSpace();
    if (value[i] === ',') {
      i++;
      continue;
    }
    const name = token();
    if (!name) {
      i++;
      continue;
    }
    skipSpace();
    if (value[i] === '=' && current) {
      i++;
      skipSpace();
      let v: string;
      if (value[i] === '"') {
        i++;
        let s = '';
        while (i < n && value[i] !== '"') {
          if (value[i] === '\\' && i + 1 < n) i++;
          s += value[i];
          i++;
        }
        i++;
        v = s;
      } else {
        const start = i;
        while (i < n && value[i] !== ',') i++;
        v = value.slice(start, i).trim();
      }
      current.params[name.toLowerCase()] = v;
    } else if (value[i] === '=') {
      // a parameter with no scheme before it: malformed; skip its value
      i++;
      while (i < n && value[i] !== ',') i++;
    } else {
      current = { scheme: name.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

/** 'repository:library/busybox:pull,push' */
export function repositoryScope(path: string, actions: readonly string[]): string {
  return `repository:${path}:${actions.join(',')}`;
}

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

export interface AuthorizeRequest {
  /** The origin of the registry endpoint, e.g. 'https://registry-1.docker.io'. */
  origin: string;
  scopes: readonly string[];
  credential?: Credential;
  signal?: AbortSignal;
  /** For messages: what we were doing ('pull h:5000/a:b'). */
  operation: string;
}

export interface AuthenticatorOptions {
  /** Injected for tests of expiry. */
  now?: () => number;
  clientId?: string;
}

/** Remembers how each registry wants to be authenticated and hands out Authorization values. */
export class Authenticator {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  private readonly now: () => number;
  private readonly clientId: string;
  /** How many token requests went out (tests check that tokens are cached). */
  tokenFetches = 0;

  constructor(
    private readonly transport: HttpTransport,
    opts: AuthenticatorOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.clientId = opts.clientId ?? 'berth';
  }

  /** Records the challenge of a 401; returns false when there is no scheme we can answer. */
  recordChallenge(origin: string, wwwAuthenticate: string | undefined): boolean {
    const all = parseWwwAuthenticate(wwwAuthenticate ?? '');
    const chosen =
      all.find((c) => c.scheme === 'bearer' && c.params.realm) ?? all.find((c) => c.scheme === 'basic');
    if (!chosen) return false;
    this.challenges.set(origin, chosen);
    return true;
  }

  challengeFor(origin: string): Challenge | undefined {
    return this.challenges.get(origin);
  }

  /**
   * The Authorization header for a request to `origin`, or undefined when the registry has
   * not asked for one (yet) or we have nothing to answer its challenge with.
   */
  async authorization(req: AuthorizeRequest): Promise<string | undefined> {
    const challenge = this.challenges.get(req.origin);
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      const c = req.credential;
      return c && 'username' in c ? basicAuthorization(c.username, c.password) : undefined;
    }
    const token = await this.token(challenge, req);
    return `Bearer ${token.value}`;
  }

  /** Forgets the token used for these scopes (the registry refused it). */
  invalidate(req: Pick<AuthorizeRequest, 'origin' | 'scopes' | 'credential'>): void {
    const challenge = this.challenges.get(req.origin);
    if (challenge?.scheme === 'bearer') this.tokens.delete(this.key(challenge, req.scopes, req.credential));
  }

  private key(challenge: Challenge, scopes: readonly string[], credential: Credential | undefined): string {
    const who = credential === undefined ? '' : 'username' in credential ? `u:${credential.username}` : 'identity-token';
    const allScopes = this.scopesFor(challenge, scopes);
    return JSON.stringify([challenge.params.realm, challenge.params.service ?? '', allScopes, who]);
  }

  /** Our scopes plus any the registry named in its challenge that we did not already ask for. */
  private scopesFor(challenge: Challenge, scopes: readonly string[]): string[] {
    const set = new Set(scopes);
    for (const s of (challenge.params.scope ?? '').split(' ').filter(Boolean)) set.add(s);
    return [...set].sort();
  }

  private async token(challenge: Challenge, req: AuthorizeRequest): Promise<CachedToken> {
    const key = this.key(challenge, req.scopes, req.credential);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > this.now()) return cached;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetchToken(challenge, req).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const token = await pending;
    this.tokens.set(key, token);
    return token;
  }

  private async fetchToken(challenge: Challenge, req: AuthorizeRequest): Promise<CachedToken> {
    const realm = challenge.params.realm!;
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new BerthError('FailedPrecondition', `the registry at ${req.origin} named an invalid token realm "${realm}" (${req.operation})`);
    }
    const service = challenge.params.service;
    const scopes = this.scopesFor(challenge, req.scopes);
    const cred = req.credential;
    this.tokenFetches++;
    const what = `token from ${url.origin}${url.pathname} for ${scopes.join(' ') || 'registry access'}`;
    let res;
    try {
      if (cred && 'identityToken' in cred) {
        // OAuth2 refresh-token grant (distribution "oauth" spec): what `docker login` stores
        // as identitytoken for registries that hand out refresh tokens.
        const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: this.clientId, refresh_token: cred.identityToken });
        if (service) form.set('service', service);
        if (scopes.length) form.set('scope', scopes.join(' '));
        res = await this.transport.send({
          method: 'POST',
          url,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: Buffer.from(form.toString()),
          signal: req.signal,
        });
      } else {
        if (service) url.searchParams.set('service', service);
        for (const s of scopes) url.searchParams.append('scope', s);
        const headers: Record<string, string> = {};
        if (cred) {
          url.searchParams.set('account', cred.username);
          headers.authorization = basicAuthorization(cred.username, cred.password);
        }
        res = await this.transport.send({ method: 'GET', url, headers, signal: req.signal });
      }
    } catch (err) {
      if (isAbort(err) || !isConnectionError(err)) throw err;
      throw connectionError(err, url.origin, { operation: req.operation, request: `fetching a ${what}` });
    }
    if (res.status < 200 || res.status > 299) {
      const said = registryMessage(await readErrorText(res));
      const status = res.status;
      if (status === 401 || status === 403 || status === 400) {
        throw new RegistryError(
          'FailedPrecondition',
          `unauthorized: the token service refused ${cred ? ('username' in cred ? `the credentials of "${cred.username}"` : 'the identity token') : 'anonymous access'}${said ? `: ${said}` : ''} (${req.operation}, ${what})`,
          { status, hint: LOGIN_HINT },
        );
      }
      throw new RegistryError('Unavailable', `the token service failed with HTTP ${status}${said ? `: ${said}` : ''} (${req.operation}, ${what})`, {
        status,
      });
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse((await readBody(res, 1024 * 1024, what)).toString('utf8')) as typeof doc;
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw new BerthError('Unavailable', `the token service sent something that is not JSON (${req.operation}, ${what})`, { cause: err });
    }
    const value = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (!value) {
      throw new BerthError('Unavailable', `the token service answered without a token (${req.operation}, ${what})`);
    }
    const lifetime = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    // Renew a little early so a token does not expire between our check and the registry's.
    const margin = Math.min(30, lifetime / 10);
    return { value, expiresAt: this.now() + (lifetime - margin) * 1000 };
  }
}

