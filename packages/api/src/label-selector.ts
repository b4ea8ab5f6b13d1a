import { labelKeyProblem, labelValueProblem } from './meta.js';

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelector {
  requirements: { key: string; operator: SelectorOperator; values: string[] }[];
}

type Requirement = LabelSelector['requirements'][number];

/** Splits on commas that are not inside a `( ... )` value set. */
function splitTopLevel(text: string): string[] | undefined {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth < 0) return undefined;
    } else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) return undefined;
  parts.push(text.slice(start));
  return parts;
}

const KEY = String.raw`[A-Za-z0-9][-A-Za-z0-9_./]*`;
const VALUE = String.raw`[-A-Za-z0-9_.]*`;
const NOT_EXISTS_RE = new RegExp(String.raw`^!\s*(${KEY})$`);
const EXISTS_RE = new RegExp(String.raw`^(${KEY})$`);
const EQUALITY_RE = new RegExp(String.raw`^(${KEY})\s*(==|=|!=)\s*(${VALUE})$`);
const SET_RE = new RegExp(String.raw`^(${KEY})\s+(in|notin)\s*\(([^()]*)\)$`);

function parseRequirement(part: string): Requirement | string {
  let m = NOT_EXISTS_RE.exec(part);
  if (m) return { key: m[1] ?? '', operator: 'DoesNotExist', values: [] };
  m = EXISTS_RE.exec(part);
  if (m) return { key: m[1] ?? '', operator: 'Exists', values: [] };
  m = EQUALITY_RE.exec(part);
  if (m) return { key: m[1] ?? '', operator: m[2] === '!=' ? 'NotIn' : 'In', values: [m[3] ?? ''] };
  m = SET_RE.exec(part);
  if (m) {
    const values = (m[3] ?? '').split(',').map((v) => v.trim());
    if (values.length === 1 && values[0] === '') return `"${part}": a set needs at least one value, like "${m[1]} ${m[2]} (a,b)"`;
    return { key: m[1] ?? '', operator: m[2] === 'in' ? 'In' : 'NotIn', values };
  }
  return `"${part}": expected key=value, key!=value, key in (a,b), key notin (a,b), key or !key`;
}

/**
 * Parses a kubectl label selector: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`,
 * `!a`, comma separated (all must hold). An empty string selects everything.
 */
export function parseLabelSelector(text: string): { ok: true; selector: LabelSelector } | { ok: false; error: string } {
  const requirements: Requirement[] = [];
  if (text.trim() === '') return { ok: true, selector: { requirements } };
  const parts = splitTopLevel(text);
  if (!parts) return { ok: false, error: `invalid label selector "${text}": unbalanced parentheses` };
  for (const raw of parts) {
    const part = raw.trim();
    if (part === '') return { ok: false, error: `invalid label selector "${text}": empty requirement` };
    const r = parseRequirement(part);
    if (typeof r === 'string') return { ok: false, error: `invalid label selector ${r}` };
    const problem = labelKeyProblem(r.key) ?? r.values.map(labelValueProblem).find((p) => p !== undefined);
    if (problem) return { ok: false, error: `invalid label selector "${text}": ${problem}` };
    requirements.push(r);
  }
  return { ok: true, selector: { requirements } };
}

function matchRequirement(
  r: { key: string; operator: string; values?: string[] },
  labels: Record<string, string>,
): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = labels[r.key];
  switch (r.operator) {
    case 'In':
      return has && value !== undefined && (r.values ?? []).includes(value);
    case 'NotIn':
      // As in Kubernetes, a missing label satisfies NotIn (and therefore `!=`).
      return !has || value === undefined || !(r.values ?? []).includes(value);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    default:
      // An operator this version does not know selects nothing rather than everything.
      return false;
  }
}

/** True when every requirement of the selector holds for the labels. */
export function matchLabels(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return selector.requirements.every((r) => matchRequirement(r, l));
}

/**
 * Kubernetes LabelSelector object form (`matchLabels` + `matchExpressions`), as used by
 * `Listener.spec.agentSelector`. An empty or missing selector selects everything.
 */
export function matchLabelSelector(
  sel:
    | { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] }
    | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!sel) return true;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    if (!Object.hasOwn(l, k) || l[k] !== v) return false;
  }
  return (sel.matchExpressions ?? []).every((e) => matchRequirement(e, l));
}
