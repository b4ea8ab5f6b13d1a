import { noEndpoint, noOptions, type BalancerPolicy, type Member, type PickContext, type PickResult, type Picker } from './balancer.js';

/** Each endpoint in turn, ignoring weights (weight 0 is out of rotation before). */
class RoundRobin<E> implements Picker<E> {
  private next: number;

  constructor(
    private readonly members: readonly Member<E>[],
    random: () => number,
  ) {
    // Start at a random offset so that agents (and workers) do not all hit endpoint 0 first.
    this.next = members.length > 0 ? Math.floor(random() * members.length) : 0;
  }

  pick(ctx: PickContext<E>): PickResult<E> {
    const n = this.members.length;
    if (n === 0) return noEndpoint();
    for (let i = 0; i < n; i++) {
      const endpoint = (this.members[this.next] as Member<E>).endpoint;
      this.next = this.next + 1 === n ? 0 : this.next + 1;
      if (ctx.exclude === undefined || !ctx.exclude.has(endpoint)) return { kind: 'endpoint', endpoint };
    }
    // Every endpoint was tried already: a retry goes to one of them again.
    const endpoint = (this.members[this.next] as Member<E>).endpoint;
    this.next = this.next + 1 === n ? 0 : this.next + 1;
    return { kind: 'endpoint', endpoint };
  }
}

export const roundRobin: BalancerPolicy<undefined> = {
  name: 'round-robin',
  weighted: false,
  parse: noOptions,
  create: (members, _options, env) => new RoundRobin(members, env.random),
};
