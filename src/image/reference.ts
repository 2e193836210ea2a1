// Image references, parsed and normalised the way Docker does (distribution/reference,
// ParseNormalizedNamed + TagNameOnly), so that `busybox`, `docker.io/busybox` and
// `index.docker.io/library/busybox:latest` all name the same image in berth and in Docker.
//
// The grammar is checked piece by piece rather than with one large regular expression so
// that a rejection can name the part that is wrong.
import { BerthError } from '../errors.js';
import { parseDigest } from './digest.js';
import type { Digest } from './types.js';

export interface Reference {
  domain: string;
  path: string;
  tag?: string;
  digest?: Digest;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';
/** Docker Hub's historical name; Docker rewrites it to docker.io. */
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
/** distribution/reference RepositoryNameTotalLengthMax, applied to the path as Docker does today. */
const MAX_PATH_LENGTH = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DOMAIN_NAME_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[a-fA-F0-9:]+\]$/;
const PORT = /^[0-9]+$/;
/** The algorithm prefix of a digest; parseDigest then checks the algorithm and the hex. */
const DIGEST_ALGORITHM = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:/;
/** A bare image ID; Docker refuses it as a name so that it is never mistaken for one. */
const IDENTIFIER = /^[a-f0-9]{64}$/;

const PATH_RULE =
  'path components are lowercase letters and digits, separated by one ".", one or two "_", or any number of "-"';

function invalid(input: string, problem: string, hint?: string): BerthError {
  return new BerthError('InvalidArgument', `invalid reference "${input}": ${problem}`, hint ? { hint } : {});
}

/**
 * Parses an image reference as `docker pull` would: the default domain is docker.io,
 * single-component Docker Hub names get `library/`, and the tag defaults to `latest` only
 * when neither a tag nor a digest is given (`name:tag@digest` keeps both).
 */
export function parseReference(input: string): Reference {
  if (IDENTIFIER.test(input)) {
    throw invalid(input, 'a 64-character hexadecimal string is an image ID, not a repository name', 'to refer to content by digest, write NAME@sha256:<hex>');
  }

  const at = input.indexOf('@');
  const nameAndTag = at === -1 ? input : input.slice(0, at);
  const digest = at === -1 ? undefined : checkDigest(input, input.slice(at + 1));
  if (nameAndTag === '' || nameAndTag.startsWith(':')) throw invalid(input, 'repository name must have at least one component');

  const { domain, remainder } = splitDomain(nameAndTag);
  const colon = remainder.indexOf(':');
  const path = colon === -1 ? remainder : remainder.slice(0, colon);
  const tag = colon === -1 ? undefined : remainder.slice(colon + 1);

  checkDomain(input, domain);
  checkPath(input, path);
  if (tag !== undefined && !TAG.test(tag)) {
    throw invalid(
      input,
      `tag "${tag}" is invalid: a tag is 1 to 128 characters of letters, digits, "_", "." and "-", and does not start with "." or "-"`,
    );
  }

  const ref: Reference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  else if (digest === undefined) ref.tag = DEFAULT_TAG;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

function checkDigest(input: string, value: string): Digest {
  if (!DIGEST_ALGORITHM.test(value)) {
    throw invalid(input, `digest "${value}" is malformed`, 'expected ALGORITHM:HEX, e.g. sha256:<64 hex digits>');
  }
  try {
    parseDigest(value, `digest "${value}"`);
  } catch (err) {
    const reason = err instanceof BerthError ? err.message.replace(/^digest "[^"]*": "[^"]*" is not a digest: /, '') : String(err);
    throw invalid(input, `digest "${value}" is invalid: ${reason}`);
  }
  return value;
}

/** Docker's splitDockerDomain: which first component is a registry rather than a namespace. */
function splitDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  if (slash === -1) return { domain: DEFAULT_DOMAIN, remainder: OFFICIAL_REPO_PREFIX + name };
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
    // An uppercase first component cannot be a namespace (those are lowercase), so Docker
    // takes it for a host name.
    domain = first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first;
    remainder = rest;
  } else {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

function checkDomain(input: string, domain: string): void {
  let host = domain;
  let port: string | undefined;
  if (domain.startsWith('[')) {
    const close = domain.indexOf(']');
    host = close === -1 ? domain : domain.slice(0, close + 1);
    const after = domain.slice(host.length);
    if (after !== '') {
      if (!after.startsWith(':')) throw invalid(input, `registry host "${domain}" is invalid: expected [IPv6]:PORT`);
      port = after.slice(1);
    }
    if (!IPV6_HOST.test(host)) {
      throw invalid(input, `registry host "${domain}" is invalid: an IPv6 address goes in brackets, without a zone (e.g. [::1]:5000)`);
    }
  } else {
    const colon = domain.indexOf(':');
    if (colon !== -1) {
      host = domain.slice(0, colon);
      port = domain.slice(colon + 1);
    }
    const bad = host.split('.').find((component) => !DOMAIN_NAME_COMPONENT.test(component));
    if (bad !== undefined) {
      throw invalid(
        input,
        `registry host "${domain}" is invalid: "${bad}" is not a host name component (letters, digits and inner "-")`,
      );
    }
  }
  if (port !== undefined && !PORT.test(port)) {
    throw invalid(input, `registry host "${domain}" is invalid: port "${port}" is not a number`);
  }
}

function checkPath(input: string, path: string): void {
  if (path.toLowerCase() !== path) throw invalid(input, 'repository name must be lowercase');
  if (path.length > MAX_PATH_LENGTH) {
    throw invalid(input, `repository name must not be more than ${MAX_PATH_LENGTH} characters (it has ${path.length})`);
  }
  for (const component of path.split('/')) {
    if (component === '') throw invalid(input, `repository name "${path}" has an empty path component`);
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(input, `repository path component "${component}" is invalid: ${PATH_RULE}`);
    }
  }
}

/** The full, normalised form: `docker.io/library/busybox:latest`, `h:5000/a/b:t@sha256:…`. */
export function formatReference(ref: Reference): string {
  let out = repositoryName(ref);
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** The repository without tag or digest: `docker.io/library/busybox`. */
export function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** Docker's short form as `docker images` shows it: `busybox:latest`, `user/app:1`. */
export function familiarName(ref: Reference): string {
  let name = repositoryName(ref);
  if (ref.domain === DEFAULT_DOMAIN) {
    name = ref.path;
    const official = ref.path.startsWith(OFFICIAL_REPO_PREFIX) ? ref.path.slice(OFFICIAL_REPO_PREFIX.length) : undefined;
    if (official !== undefined && !official.includes('/')) name = official;
  }
  if (ref.tag !== undefined) name += `:${ref.tag}`;
  if (ref.digest !== undefined) name += `@${ref.digest}`;
  return name;
}
