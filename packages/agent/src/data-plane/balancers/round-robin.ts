import { NO_ENDPOINT, type Balancer, type BalancerPolicy, type PickContext, type PickResult, type WeightedEndpoint } from './balancer.js';

/** Each endpoint in turn, ignoring weights (weight 0 is filtered out before). */
class RoundRobin<E extends WeightedEndpoint> implements Balancer<E> {
  private next = 0;
  private readonly none: PickResult<E> = { kind: 'none', reason: NO_ENDPOINT };

  constructor(private readonly endpoints: readonly E[]) {
    // Start at a random offset so that agents (and workers) do not all hit endpoint 0 first.
    this.next = endpoints.length > 0 ? Math.floor(Math.random() * endpoints.length) : 0;
  }

  pick(ctx: PickContext<E>): PickResult<E> {
    const n = this.endpoints.length;
    if (n === 0) return this.none;
    for (let i = 0; i < n; i++) {
      const endpoint = this.endpoints[this.next] as E;
      this.next = this.next + 1 === n ? 0 : this.next + 1;
      if (ctx.exclude === undefined || !ctx.exclude.has(endpoint)) return { kind: 'endpoint', endpoint };
    }
    // Every endpoint was tried already: a retry goes to one of them again.
    const endpoint = this.endpoints[this.next] as E;
    this.next = this.next + 1 === n ? 0 : this.next + 1;
    return { kind: 'endpoint', endpoint };
  }

  onStart(): void {}
  onEnd(): void {}
}

export const roundRobin: BalancerPolicy = {
  name: 'round-robin',
  create: (endpoints) => new RoundRobin(endpoints),
};
