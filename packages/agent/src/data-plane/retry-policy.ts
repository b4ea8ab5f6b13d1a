import type { RetryPolicy as RetryPolicyConfig } from '@sluice/proto';

/** The retry conditions this agent understands (Envoy's names). */
export const RETRY_CONDITIONS = ['connect-failure', 'gateway-error', '5xx', 'reset', 'retriable-4xx'] as const;
export type RetryCondition = (typeof RETRY_CONDITIONS)[number];

export interface RetryPolicy {
  /** Retries after the first try; 0 = no retry. */
  readonly attempts: number;
  readonly connectFailure: boolean;
  readonly reset: boolean;
  /** Whether a response with this status is retried (502/503/504, any 5xx, 409). */
  retriesStatus(status: number): boolean;
  /** Whether a per-try timeout is retried (Envoy: under 5xx and gateway-error). */
  readonly timeout: boolean;
}

export function compileRetryPolicy(config: RetryPolicyConfig | undefined): RetryPolicy {
  const on = new Set(config?.on ?? []);
  const gateway = on.has('gateway-error');
  const any5xx = on.has('5xx');
  const conflict = on.has('retriable-4xx');
  return {
    attempts: config?.attempts ?? 0,
    connectFailure: on.has('connect-failure') || gateway || any5xx,
    reset: on.has('reset') || any5xx,
    timeout: gateway || any5xx,
    retriesStatus: (status) =>
      (any5xx && status >= 500 && status <= 599) ||
      (gateway && (status === 502 || status === 503 || status === 504)) ||
      (conflict && status === 409),
  };
}

/** RFC 9110 §9.2.2 idempotent methods: a replay has the same effect as one request. */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * Whether a request may be sent again after a failed try. A connect failure is safe for any
 * method (the request reached no backend); anything later only for idempotent methods, since
 * the backend may have acted on it. Routes have no opt-in for other methods yet.
 */
export function isReplaySafe(method: string, connectFailure: boolean): boolean {
  return connectFailure || IDEMPOTENT_METHODS.has(method);
}
