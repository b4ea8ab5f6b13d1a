// Envoy's retry budget (cluster circuit_breakers.retry_budget) with its defaults: retries in
// flight to a cluster never exceed budget_percent of its active requests, with a floor of
// min_retry_concurrency so a quiet cluster can still retry. Over budget, the failure is the
// answer: retries must not multiply load on an upstream that is already failing.

export const RETRY_BUDGET_PERCENT = 20;
export const MIN_RETRY_CONCURRENCY = 3;

/** Retries allowed in flight while `activeRequests` requests are. */
export function retryBudget(activeRequests: number): number {
  return Math.max(MIN_RETRY_CONCURRENCY, Math.floor((activeRequests * RETRY_BUDGET_PERCENT) / 100));
}
