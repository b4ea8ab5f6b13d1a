/** A Kubernetes label selector in object form, as `Listener.spec.agentSelector` carries it. */
export interface AgentSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

interface Requirement {
  key: string;
  operator: string;
  values: readonly string[];
}

function requirements(s: AgentSelector): Requirement[] {
  return [
    ...Object.entries(s.matchLabels ?? {}).map(([key, value]) => ({ key, operator: 'In', values: [value] })),
    ...(s.matchExpressions ?? []).map((e) => ({ key: e.key, operator: e.operator, values: e.values ?? [] })),
  ];
}

/** True when no label value can satisfy both requirements on the same key. */
function contradicts(a: Requirement, b: Requirement): boolean {
  const pair = (x: Requirement, y: Requirement): boolean => {
    if (x.operator === 'In' && y.operator === 'In') return !x.values.some((v) => y.values.includes(v));
    if (x.operator === 'In' && y.operator === 'NotIn') return x.values.every((v) => y.values.includes(v));
    if (x.operator === 'In' && y.operator === 'DoesNotExist') return true;
    if (x.operator === 'Exists' && y.operator === 'DoesNotExist') return true;
    return false;
  };
  return a.key === b.key && (pair(a, b) || pair(b, a));
}

/**
 * Whether some agent could match both selectors. Conservative: it answers false only when
 * two requirements on one key contradict each other (`pool=a` vs `pool=b`, `In` vs
 * `DoesNotExist`, ...); selectors that are disjoint for subtler reasons count as overlapping.
 */
export function selectorsOverlap(a: AgentSelector, b: AgentSelector): boolean {
  const ra = requirements(a);
  const rb = requirements(b);
  return !ra.some((x) => rb.some((y) => contradicts(x, y)));
}
