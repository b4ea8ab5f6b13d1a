import type { z } from 'zod';
import type { FieldError } from './errors.js';
import { API_VERSION, KINDS, kindInfo, resolveKind, type KindName } from './kinds.js';
import type { Agent } from './schemas/agent.js';
import type { Listener } from './schemas/listener.js';
import { RESOURCE_SCHEMAS } from './schemas/registry.js';
import type { Route, TCPRoute, UDPRoute } from './schemas/route.js';
import type { Secret } from './schemas/secret.js';
import type { Upstream } from './schemas/upstream.js';

export type Resource = Listener | Route | TCPRoute | UDPRoute | Upstream | Secret | Agent;

export type ValidationResult = { ok: true; value: Resource } | { ok: false; errors: FieldError[] };

const IDENTIFIER_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `['spec', 'rules', 0, 'backendRefs']` -> `spec.rules[0].backendRefs`; odd keys in brackets: `data[tls.crt]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      out += IDENTIFIER_RE.test(s) ? (out === '' ? s : `.${s}`) : `[${s}]`;
    }
  }
  return out;
}

function plural(n: number | bigint, word: string): string {
  return `${n} ${word}${Number(n) === 1 ? '' : 's'}`;
}

const TYPE_MESSAGES: Record<string, string> = {
  string: 'must be a string',
  number: 'must be a number',
  int: 'must be an integer',
  boolean: 'must be a boolean (true or false)',
  array: 'must be a list',
  object: 'must be an object',
  record: 'must be an object',
};

function formatValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Turns zod issues into operator-facing field errors; zod's own wording never leaks. */
function toFieldErrors(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    const field = formatPath(path);
    switch (issue.code) {
      case 'invalid_type':
        out.push({ field, message: issue.input === undefined ? 'Required value' : (TYPE_MESSAGES[issue.expected] ?? `must be a ${issue.expected}`) });
        break;
      case 'too_small': {
        const min = issue.minimum;
        let message: string;
        if (issue.origin === 'string') message = Number(min) === 1 ? 'must not be empty' : `must be at least ${plural(min, 'character')}`;
        else if (issue.origin === 'array' || issue.origin === 'set') message = `must have at least ${plural(min, 'item')}`;
        else message = issue.inclusive === false ? `must be > ${min}` : `must be >= ${min}`;
        out.push({ field, message });
        break;
      }
      case 'too_big': {
        const max = issue.maximum;
        let message: string;
        if (issue.origin === 'string') message = `must be at most ${plural(max, 'character')}`;
        else if (issue.origin === 'array' || issue.origin === 'set') message = `must have at most ${plural(max, 'item')}`;
        else message = issue.inclusive === false ? `must be < ${max}` : `must be <= ${max}`;
        out.push({ field, message });
        break;
      }
      case 'invalid_value':
        if (issue.input === undefined) out.push({ field, message: 'Required value' });
        else if (issue.values.length === 1) out.push({ field, message: `must be ${JSON.stringify(issue.values[0])}` });
        else out.push({ field, message: `must be one of: ${issue.values.map(formatValue).join(', ')}` });
        break;
      case 'unrecognized_keys':
        for (const key of issue.keys) out.push({ field: formatPath([...path, key]), message: `unknown field "${key}"` });
        break;
      case 'invalid_format': {
        const prefix = (issue as { prefix?: unknown }).prefix;
        out.push({ field, message: typeof prefix === 'string' ? `must start with "${prefix}"` : `invalid ${issue.format}` });
        break;
      }
      case 'not_multiple_of':
        out.push({ field, message: `must be a multiple of ${issue.divisor}` });
        break;
      case 'invalid_key':
      case 'invalid_element':
        out.push(...toFieldErrors(issue.issues, path));
        break;
      case 'invalid_union':
        out.push({ field, message: 'does not match any allowed form' });
        break;
      case 'custom':
        out.push({ field, message: issue.message });
        break;
      default: {
        const unhandled: never = issue;
        out.push({ field, message: `invalid value (${(unhandled as { code?: string }).code ?? 'unknown problem'})` });
      }
    }
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const KIND_LIST = KINDS.map((k) => k.kind).join(', ');

/**
 * Validates one object of any kind and applies defaults. Reports every problem at once,
 * each with a field path. Never throws for bad input. Cross-object references (a Route
 * naming a missing Upstream) are not checked here; see `resourceReferences`.
 */
export function validateResource(input: unknown): ValidationResult {
  if (!isPlainObject(input)) {
    return { ok: false, errors: [{ field: '', message: 'must be an object with apiVersion, kind, metadata and spec' }] };
  }
  const errors: FieldError[] = [];
  const apiVersion = input['apiVersion'];
  if (apiVersion === undefined) errors.push({ field: 'apiVersion', message: `Required value: must be "${API_VERSION}"` });
  else if (apiVersion !== API_VERSION) {
    errors.push({ field: 'apiVersion', message: `unsupported apiVersion ${JSON.stringify(apiVersion)}: must be "${API_VERSION}"` });
  }

  const kind = input['kind'];
  const info = typeof kind === 'string' ? kindInfo(kind) : undefined;
  if (!info) {
    if (kind === undefined) errors.push({ field: 'kind', message: `Required value: must be one of: ${KIND_LIST}` });
    else {
      const guess = typeof kind === 'string' ? resolveKind(kind) : undefined;
      const hint = guess ? ` (did you mean "${guess.kind}"?)` : '';
      errors.push({ field: 'kind', message: `unknown kind ${JSON.stringify(kind)}${hint}: must be one of: ${KIND_LIST}` });
    }
    return { ok: false, errors };
  }

  const schema = RESOURCE_SCHEMAS[info.kind as KindName].input;
  // apiVersion was reported above in plain words; parse the rest as if it were right.
  // reportInput lets the messages tell a missing field ("Required value") from a wrong one.
  const result = schema.safeParse({ ...input, apiVersion: API_VERSION }, { reportInput: true });
  if (!result.success) errors.push(...toFieldErrors(result.error.issues));
  if (errors.length > 0) return { ok: false, errors: dedupe(errors) };
  return { ok: true, value: result.data as Resource };
}

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.field}\u0000${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * The user-owned desired state: what `apply` compares to decide "unchanged".
 * `spec` for most kinds; `{type, data}` for Secret, which has no spec.
 */
export function specOf(r: Resource): unknown {
  if (r.kind === 'Secret') return { type: r.type, data: r.data };
  return r.spec;
}
