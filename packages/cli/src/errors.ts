/**
 * The CLI's only error class (STYLE §7). Commands throw it with a string code; only the
 * entry point turns codes into exit statuses (see exit-code.ts).
 */
export type CliErrorCode =
  /** Bad flags or arguments. */
  | 'usage'
  /** The config file cannot be read or written, or names an unknown context. */
  | 'config'
  /** A `-f` input cannot be read or parsed. */
  | 'input'
  /** The controller cannot be reached (connection refused, DNS, reset). */
  | 'unreachable'
  | 'timeout'
  /** SIGINT while a request was in flight. */
  | 'interrupted'
  /** The controller answered with something that is not a Status or the expected object. */
  | 'bad-response'
  /** The editor could not be started or failed. */
  | 'editor'
  // Server Status reasons (docs/admin-api.md).
  | 'bad-request'
  | 'not-found'
  | 'method-not-allowed'
  | 'already-exists'
  | 'conflict'
  | 'gone'
  | 'too-large'
  | 'invalid'
  | 'unavailable'
  | 'internal';

/** One field problem reported by the server in `details.causes`. */
export interface StatusCause {
  field: string;
  message: string;
  reason?: string;
}

export interface CliErrorOptions {
  /** Extra lines printed after the message, one per line (server causes, hints). */
  details?: string[];
  /** Field causes from a server Status, kept structured for callers that remap them (apply). */
  causes?: StatusCause[];
  /** HTTP status when the error came from the server. */
  httpStatus?: number;
  cause?: unknown;
}

export class CliError extends Error {
  override readonly name = 'CliError';
  readonly code: CliErrorCode;
  readonly details: string[];
  readonly causes: StatusCause[];
  readonly httpStatus: number | undefined;

  constructor(code: CliErrorCode, message: string, options: CliErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? [];
    this.causes = options.causes ?? [];
    this.httpStatus = options.httpStatus;
  }
}

export function isCliError(value: unknown, code?: CliErrorCode): value is CliError {
  return value instanceof CliError && (code === undefined || value.code === code);
}

/** The stderr lines for an error: `error: message`, then each detail on its own line. */
export function errorLines(error: unknown): string[] {
  if (error instanceof CliError) return [`error: ${error.message}`, ...error.details];
  if (error instanceof Error) return [`error: ${error.message}`];
  return [`error: ${String(error)}`];
}
