// The registry client and what configures it: endpoints (mirrors, insecure hosts),
// credentials, authentication and platform selection.
export {
  RegistryClient,
  MANIFEST_ACCEPT,
  type RegistryClientOptions,
  type RequestOptions,
  type ManifestResult,
  type FetchBlobOptions,
  type PushBlobOptions,
  type PushBlobResult,
} from './client.js';
export { hostPlatform, parsePlatform, formatPlatform, normalizePlatform, selectManifest } from './platform.js';
export { RegistryError, LOGIN_HINT } from './registry-error.js';
export { parseWwwAuthenticate, repositoryScope, type Challenge } from './auth.js';
export { resolveEndpoints, canonicalDomain, isLoopback, DOCKER_HUB_DOMAIN, DOCKER_HUB_HOST, type RegistryHostConfig, type RegistryEndpoint } from './hosts.js';
export {
  loadDockerConfigCredentials,
  parseDockerConfig,
  credentialStoreFrom,
  defaultDockerConfigPath,
  type Credential,
  type CredentialStore,
  type DockerConfigCredentialStore,
} from './credentials.js';
