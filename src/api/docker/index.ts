// The Docker Engine API server: HTTP over a unix socket, adapting requests to the Engine.
//
// StreamSession.output may yield Buffers (written as they are: already framed, or raw with a
// tty) or `{ stream: 1 | 2, data: Buffer }` objects (framed here unless tty).
export { startDockerApi, dockerApiRoutes, type DockerApiOptions, type DockerApi } from './server.js';
export { MIN_API_VERSION, MAX_API_VERSION, compareApiVersions } from './api-version.js';
export { frame, parseFrames, STDIN, STDOUT, STDERR } from './frames.js';
