import { ControllerError, type ControllerErrorCode } from '../errors.js';
import { StoreError } from '../store/index.js';

/** A Kubernetes-style Status object, the body of every error the admin API returns. */
export interface StatusBody {
  apiVersion: 'v1';
  kind: 'Status';
  status: 'Failure';
  code: number;
  reason: string;
  message: string;
  details?: { kind?: string; name?: string; causes?: { field: string; message: string; reason: string }[] };
}

const HTTP: Record<ControllerErrorCode, [number, string]> = {
  'bad-request': [400, 'BadRequest'],
  'not-found': [404, 'NotFound'],
  'method-not-allowed': [405, 'MethodNotAllowed'],
  'already-exists': [409, 'AlreadyExists'],
  conflict: [409, 'Conflict'],
  gone: [410, 'Gone'],
  'too-large': [413, 'RequestEntityTooLarge'],
  'unsupported-media-type': [415, 'UnsupportedMediaType'],
  invalid: [422, 'Invalid'],
  unavailable: [503, 'ServiceUnavailable'],
  internal: [500, 'InternalError'],
};

/** Maps any thrown value to a Status: codes become HTTP statuses only here, at the edge. */
export function toStatus(error: unknown): StatusBody {
  const known = asControllerError(error);
  const [code, reason] = HTTP[known.code];
  const body: StatusBody = { apiVersion: 'v1', kind: 'Status', status: 'Failure', code, reason, message: known.message };
  const { kind, name, causes } = known.details;
  if (kind !== undefined || name !== undefined || causes !== undefined) {
    body.details = {
      ...(kind !== undefined ? { kind } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(causes ? { causes: causes.map((c) => ({ ...c, reason: causeReason(c.message) })) } : {}),
    };
  }
  return body;
}

function asControllerError(error: unknown): ControllerError {
  if (error instanceof ControllerError) return error;
  if (error instanceof StoreError) {
    if (error.code === 'compacted') return new ControllerError('gone', error.message, {}, { cause: error });
    return new ControllerError('unavailable', error.message, {}, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ControllerError('internal', `internal error: ${message}`, {}, { cause: error });
}

function causeReason(message: string): string {
  if (message === 'Required value') return 'FieldValueRequired';
  if (message.startsWith('unknown field')) return 'FieldValueUnknown';
  if (message.startsWith('duplicate')) return 'FieldValueDuplicate';
  return 'FieldValueInvalid';
}
