// The engine (berthd's core): containers under per-container monitors, images, volumes,
// events, in the Docker Engine API's shapes.
export * from './types.js';
export { BerthEngine, API_VERSION, MIN_API_VERSION, BERTH_VERSION, type OpenEngineOptions } from './engine.js';
export type { EngineOptions } from './context.js';
