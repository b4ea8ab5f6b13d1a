// The public surface of @sluice/translator, hand-picked (STYLE §8). Pure: user resources in,
// data-plane resources and per-agent-group snapshots out; no I/O, no clock, no randomness.
export { translate } from './translate.js';
export type { ListenerSelection, Problem, TranslateOptions, Translation } from './translate.js';
export { resourceToJSON } from './data-plane-resource.js';
export type { DataPlaneResource, ResourceRef } from './data-plane-resource.js';
export { snapshotFor, checkConsistency } from './snapshot.js';
export type { Snapshot } from './snapshot.js';
export { RESOURCE_ORDER, resourceKey } from './resource-key.js';
export { endpointId } from './cluster.js';
export type { AgentSelector } from './selector.js';
export { computeWeights, targetFactor, referenceLatency, effectiveWeight, dataPlaneWeight, DATA_PLANE_WEIGHT_SCALE, DEFAULT_WEIGHT_ENGINE_OPTIONS } from './weight-engine.js';
export type { WeightEngineEndpoint, WeightEngineInput, WeightEngineOptions, WeightEngineResult, WeightEngineStats } from './weight-engine.js';
