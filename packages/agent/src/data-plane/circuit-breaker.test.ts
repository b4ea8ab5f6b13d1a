import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './circuit-breaker.js';
import { retryBudget } from './retry-budget.js';

describe('CircuitBreaker', () => {
  it('refuses requests over maxRequests at once and counts them', () => {
    const b = new CircuitBreaker();
    b.limits = { maxRequests: 2, maxPendingRequests: 0, maxRetries: undefined };
    expect([b.tryStartRequest(), b.tryStartRequest(), b.tryStartRequest()]).toEqual([true, true, false]);
    b.endRequest();
    expect(b.tryStartRequest()).toBe(true);
    expect(b.stats()).toMatchObject({ activeRequests: 2, requestOverflow: 1 });
  });

  it('refuses a try that must wait for a connection while maxPendingRequests wait', () => {
    const b = new CircuitBreaker();
    b.limits = { maxRequests: 0, maxPendingRequests: 1, maxRetries: undefined };
    expect(b.tryStartPending(true)).toBe(true);
    expect(b.tryStartPending(false)).toBe(true); // a free connection: no wait
    expect(b.tryStartPending(true)).toBe(false);
    expect(b.stats()).toMatchObject({ pendingRequests: 2, pendingOverflow: 1 });
  });

  it('keeps retries in flight within the budget: max(3, 20 % of active requests)', () => {
    expect([0, 10, 15, 20, 100].map(retryBudget)).toEqual([3, 3, 3, 4, 20]);
    const b = new CircuitBreaker();
    for (let i = 0; i < 20; i++) b.tryStartRequest();
    const started = Array.from({ length: 6 }, () => b.tryStartRetry());
    expect(started).toEqual([true, true, true, true, false, false]);
    b.endRetry();
    expect(b.tryStartRetry()).toBe(true);
    expect(b.stats()).toMatchObject({ activeRetries: 4, retryBudgetExhausted: 2, retryOverflow: 0 });
  });

  it('applies maxRetries below the budget, and 0 allows none', () => {
    const b = new CircuitBreaker();
    b.limits = { maxRequests: 0, maxPendingRequests: 0, maxRetries: 1 };
    expect([b.tryStartRetry(), b.tryStartRetry()]).toEqual([true, false]);
    b.limits = { maxRequests: 0, maxPendingRequests: 0, maxRetries: 0 };
    b.endRetry();
    expect(b.tryStartRetry()).toBe(false);
    expect(b.stats().retryOverflow).toBe(2);
  });
});
