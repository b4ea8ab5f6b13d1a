/** One validation problem, addressed by a kubectl-style field path such as `spec.rules[0].backendRefs[1].weight`. */
export interface FieldError {
  field: string;
  message: string;
}

export function formatFieldError(e: FieldError): string {
  return e.field === '' ? e.message : `${e.field}: ${e.message}`;
}

export type ApiErrorCode = 'invalid' | 'unknown-kind' | 'parse';

/** The package's only error class (STYLE §7); callers switch on `code`, never on the message. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly code: ApiErrorCode;
  readonly errors: FieldError[];

  constructor(code: ApiErrorCode, message: string, errors: FieldError[] = []) {
    super(message);
    this.code = code;
    this.errors = errors;
  }
}
