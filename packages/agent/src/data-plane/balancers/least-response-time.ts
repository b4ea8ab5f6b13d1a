import type { BalancerEnv, BalancerPolicy, Member, Picker } from './balancer.js';
import { LowestScore, parseChoiceCount, type ChoiceOptions } from './least-connections.js';

/** Latency assumed for an endpoint nobody has measured yet when no other one is measured either. */
export const DEFAULT_LATENCY_MS = 1;

/**
 * Least response time (Finagle/Linkerd "peak EWMA" with power of two choices): cost =
 * peak-EWMA latency x (in flight + 1) / weight, lowest wins, among 2 endpoints sampled at
 * random (`choice_count` changes that; the random sample keeps agents from herding onto the
 * one fastest endpoint). An endpoint not measured yet is assumed as fast as the average of the
 * measured ones, so a new endpoint is tried at once but not flooded.
 */
export const leastResponseTime: BalancerPolicy<ChoiceOptions> = {
  name: 'least-response-time',
  weighted: true,
  parse: (lb) => parseChoiceCount(lb, 2),
  create: (members, options, env) => leastResponseTimePicker(members, options, env),
};

function leastResponseTimePicker<E>(members: readonly Member<E>[], options: ChoiceOptions, env: BalancerEnv): Picker<E> {
  // The average of the measured latencies, computed at most once per clock reading.
  let averageAt = NaN;
  let average = DEFAULT_LATENCY_MS;
  const averageLatency = (now: number): number => {
    if (now === averageAt) return average;
    let sum = 0;
    let count = 0;
    for (const m of members) {
      const l = m.load.latency(now);
      if (l !== undefined) {
        sum += l;
        count++;
      }
    }
    averageAt = now;
    average = count > 0 ? sum / count : DEFAULT_LATENCY_MS;
    return average;
  };
  return new LowestScore(members, options.choiceCount, env, (m, now) => {
    const latency = m.load.latency(now) ?? averageLatency(now);
    return ((latency + EPSILON_MS) * (m.load.inFlight + 1)) / m.weight;
  }, true);
}

/** Keeps a cost above 0 when the latency decayed to 0, so in-flight counts still matter. */
const EPSILON_MS = 0.001;
