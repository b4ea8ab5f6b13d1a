import type { CircuitBreaker as CircuitBreakerConfig } from '@sluice/proto';
import { retryBudget } from './retry-budget.js';

// Envoy-style circuit breaking, per cluster per agent: over a limit a request is refused at
// once (503 "upstream overloaded") instead of queueing without end. One instance per cluster
// name, kept across config versions, so requests started on an older version still count.
// maxConnections is enforced by the endpoint pools (undici `connections`), not here.

export interface BreakerLimits {
  /** 0 = no limit. */
  readonly maxRequests: number;
  /** Requests waiting for a connection; 0 = no limit. */
  readonly maxPendingRequests: number;
  /** Retries in flight; undefined = no limit (the retry budget still applies), 0 = none. */
  readonly maxRetries: number | undefined;
}

export const NO_LIMITS: BreakerLimits = { maxRequests: 0, maxPendingRequests: 0, maxRetries: undefined };

export function breakerLimits(config: CircuitBreakerConfig | undefined): BreakerLimits {
  if (config === undefined) return NO_LIMITS;
  return { maxRequests: config.maxRequests, maxPendingRequests: config.maxPendingRequests, maxRetries: config.maxRetries };
}

/** Counters for metrics (names after Envoy's upstream_rq_pending_overflow ...). */
export interface BreakerStats {
  readonly activeRequests: number;
  readonly pendingRequests: number;
  readonly activeRetries: number;
  /** Requests refused because maxRequests was reached. */
  readonly requestOverflow: number;
  /** Requests refused because maxPendingRequests was reached. */
  readonly pendingOverflow: number;
  /** Retries not made because maxRetries was reached. */
  readonly retryOverflow: number;
  /** Retries not made because the retry budget was spent. */
  readonly retryBudgetExhausted: number;
}

export class CircuitBreaker {
  limits: BreakerLimits = NO_LIMITS;
  activeRequests = 0;
  pendingRequests = 0;
  activeRetries = 0;
  private requestOverflow = 0;
  private pendingOverflow = 0;
  private retryOverflow = 0;
  private retryBudgetExhausted = 0;

  /** A request may start (counts it as active) or is refused (counted). */
  tryStartRequest(): boolean {
    const max = this.limits.maxRequests;
    if (max > 0 && this.activeRequests >= max) {
      this.requestOverflow++;
      return false;
    }
    this.activeRequests++;
    return true;
  }

  endRequest(): void {
    this.activeRequests--;
  }

  /**
   * A try starts waiting for its connection (counted as pending until it has one). `mustWait`:
   * no connection is free, so it is refused (and counted) if maxPendingRequests already wait.
   */
  tryStartPending(mustWait: boolean): boolean {
    const max = this.limits.maxPendingRequests;
    if (mustWait && max > 0 && this.pendingRequests >= max) {
      this.pendingOverflow++;
      return false;
    }
    this.pendingRequests++;
    return true;
  }

  endPending(): void {
    this.pendingRequests--;
  }

  /**
   * A retry may start: within maxRetries and the retry budget, max(3, 20 % of the active
   * requests) in flight (Envoy's budget defaults). Counts it as active, or the refusal.
   * `budgeted: false` (a retry after a connect failure) skips the budget: the failed try
   * reached no backend, so the retry adds no load to the Upstream, and a dead endpoint
   * must not cost clients their requests while the checks catch up. maxRetries still holds.
   */
  tryStartRetry(budgeted = true): boolean {
    const max = this.limits.maxRetries;
    if (max !== undefined && this.activeRetries >= max) {
      this.retryOverflow++;
      return false;
    }
    if (budgeted && this.activeRetries >= retryBudget(this.activeRequests)) {
      this.retryBudgetExhausted++;
      return false;
    }
    this.activeRetries++;
    return true;
  }

  endRetry(): void {
    this.activeRetries--;
  }

  stats(): BreakerStats {
    return {
      activeRequests: this.activeRequests,
      pendingRequests: this.pendingRequests,
      activeRetries: this.activeRetries,
      requestOverflow: this.requestOverflow,
      pendingOverflow: this.pendingOverflow,
      retryOverflow: this.retryOverflow,
      retryBudgetExhausted: this.retryBudgetExhausted,
    };
  }
}
