// Registry credentials from Docker's client configuration (~/.docker/config.json), so that
// `docker login` once is enough for berth too. Only the inline `auths` section is read:
// credential helpers are external programs that berth does not run.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../errors.js';
import { canonicalDomain } from './hosts.js';

export type Credential = { username: string; password: string } | { identityToken: string };

export interface CredentialStore {
  get(domain: string): Credential | undefined;
}

export interface DockerConfigCredentialStore extends CredentialStore {
  /** The file read (it may not exist). */
  readonly file: string;
  /** What was present but ignored (credential helpers), for the caller to log once. */
  readonly warnings: string[];
}

/** The key `docker login` writes for Docker Hub (a leftover of the v1 index). */
const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** $DOCKER_CONFIG/config.json, else ~/.docker/config.json, as the docker CLI looks them up. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG;
  return dir ? join(dir, 'config.json') : join(homedir(), '.docker', 'config.json');
}

export async function loadDockerConfigCredentials(file: string = defaultDockerConfigPath()): Promise<DockerConfigCredentialStore> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return credentialStoreFrom({}, { file });
    throw new BerthError('FailedPrecondition', `cannot read registry credentials from ${file}: ${code ?? String(err)}`, {
      cause: err,
      hint: 'fix the file permissions, or point DOCKER_CONFIG at a readable directory',
    });
  }
  return parseDockerConfig(text, file);
}

/** Parses the text of a docker config.json; `file` names it in messages. */
export function parseDockerConfig(text: string, file: string): DockerConfigCredentialStore {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new BerthError('InvalidArgument', `${file}: not valid JSON: ${(cause as Error).message}`, {
      cause,
      hint: 'fix the file or run `docker login` again to rewrite it',
    });
  }
  if (!isObject(doc)) throw new BerthError('InvalidArgument', `${file}: expected a JSON object at the top level`);

  const warnings: string[] = [];
  if (typeof doc.credsStore === 'string' && doc.credsStore !== '') {
    warnings.push(
      `${file}: "credsStore": "${doc.credsStore}" is not supported; credentials kept by docker-credential-${doc.credsStore} are not used`,
    );
  }
  if (isObject(doc.credHelpers) && Object.keys(doc.credHelpers).length > 0) {
    warnings.push(
      `${file}: "credHelpers" is not supported; no credentials are used for ${Object.keys(doc.credHelpers).join(', ')}`,
    );
  }

  const entries: Record<string, Credential> = {};
  if (doc.auths !== undefined && doc.auths !== null) {
    if (!isObject(doc.auths)) throw new BerthError('InvalidArgument', `${file}: "auths" must be an object`);
    // An exact key ('h:5000') beats a URL form of the same host ('https://h:5000/v1/') when
    // both are present, whatever their order in the file.
    const ranked = Object.entries(doc.auths).sort(([a], [b]) => keyRank(a) - keyRank(b));
    for (const [key, value] of ranked) {
      const credential = parseAuthEntry(value, `${file}: auths["${key}"]`);
      const host = hostOfAuthKey(key);
      if (credential !== undefined && host !== '' && !(host in entries)) entries[host] = credential;
    }
  }
  return credentialStoreFrom(entries, { file, warnings });
}

/** A store over fixed entries keyed by registry domain (tests, flags, the daemon's own logins). */
export function credentialStoreFrom(
  entries: Record<string, Credential>,
  meta: { file?: string; warnings?: string[] } = {},
): DockerConfigCredentialStore {
  const byHost = new Map<string, Credential>();
  for (const [key, credential] of Object.entries(entries)) {
    const host = hostOfAuthKey(key);
    if (!byHost.has(host)) byHost.set(host, credential);
  }
  return {
    file: meta.file ?? '',
    warnings: meta.warnings ?? [],
    get: (domain: string) => byHost.get(canonicalDomain(domain)),
  };
}

function keyRank(key: string): number {
  if (key === DOCKER_HUB_AUTH_KEY) return 0;
  return /^[a-z]+:\/\//i.test(key) || key.includes('/') ? 1 : 0;
}

/** Docker's ConvertToHostname: drop the scheme and any path, then fold Hub aliases. */
function hostOfAuthKey(key: string): string {
  const withoutScheme = key.trim().replace(/^[a-z]+:\/\//i, '');
  const slash = withoutScheme.indexOf('/');
  return canonicalDomain(slash === -1 ? withoutScheme : withoutScheme.slice(0, slash));
}

function parseAuthEntry(value: unknown, where: string): Credential | undefined {
  if (!isObject(value)) throw new BerthError('InvalidArgument', `${where}: expected an object`);
  const field = (name: string): string | undefined => {
    const v = value[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new BerthError('InvalidArgument', `${where}.${name}: expected a string`);
    return v === '' ? undefined : v;
  };

  // An identity token is what `docker login` stores for OAuth logins; it replaces the password.
  const identityToken = field('identitytoken');
  if (identityToken !== undefined) return { identityToken };

  const auth = field('auth');
  if (auth !== undefined) return decodeAuth(auth, `${where}.auth`);

  const username = field('username');
  const password = field('password');
  if (username !== undefined || password !== undefined) {
    if (username === undefined || password === undefined) {
      throw new BerthError('InvalidArgument', `${where}: has ${username === undefined ? 'a password but no username' : 'a username but no password'}`, {
        hint: 'run `docker login` for this registry again',
      });
    }
    return { username, password };
  }
  // An empty entry is what docker leaves when a credential helper holds the secret.
  return undefined;
}

function decodeAuth(auth: string, where: string): Credential {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(auth) || auth.length % 4 === 1) {
    throw new BerthError('InvalidArgument', `${where}: not base64`, { hint: 'it should be base64 of "username:password"' });
  }
  const decoded = Buffer.from(auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) {
    throw new BerthError('InvalidArgument', `${where}: the decoded value is not "username:password"`, {
      hint: 'run `docker login` for this registry again',
    });
  }
  // The password is everything after the first colon; it may contain colons itself.
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
