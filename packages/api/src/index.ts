export { API_VERSION, KINDS, resolveKind, kindInfo } from './kinds.js';
export type { KindInfo } from './kinds.js';
export { ApiError, formatFieldError } from './errors.js';
export type { ApiErrorCode, FieldError } from './errors.js';
export { parseYamlDocuments, toYaml } from './yaml.js';
export { parseDuration, formatDuration } from './duration.js';
