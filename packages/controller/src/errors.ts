import type { FieldError } from '@sluice/api';

// One error class for the controller (STYLE §7). Codes are mapped to HTTP status at the
// admin API edge (admin/status.ts) and, later, to gRPC status at the discovery edge.
export type ControllerErrorCode =
  | 'not-found'
  | 'already-exists'
  | 'conflict'
  | 'invalid'
  | 'bad-request'
  | 'method-not-allowed'
  | 'unsupported-media-type'
  | 'too-large'
  | 'gone'
  | 'unavailable'
  | 'internal';

export class ControllerError extends Error {
  override readonly name = 'ControllerError';
  constructor(
    readonly code: ControllerErrorCode,
    message: string,
    readonly details: { kind?: string; name?: string; causes?: FieldError[] } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
