import { z } from 'zod';
import { DURATION_HINT, parseDuration } from '../duration.js';
import { isHeaderName, isHostname, isIpAddress, parseCidr } from '../net.js';
import { labelsSchema, nameSchema, namespaceSchema } from '../meta.js';

/** A string checked by `problem`, which returns an operator-facing message or undefined. */
export function checkedString(problem: (v: string) => string | undefined) {
  return z.string().superRefine((v, ctx) => {
    const p = problem(v);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
  });
}

export const duration = () =>
  checkedString((v) => (parseDuration(v) === undefined ? `invalid duration "${v}": ${DURATION_HINT}` : undefined));

export const port = () => z.number().int().min(1).max(65535);

/** Weights are relative: 0 takes no traffic, bigger numbers take proportionally more. */
export const weight = () => z.number().int().min(0).max(1_000_000);

export const count = () => z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const positiveCount = () => z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

export const cidr = () => checkedString((v) => (parseCidr(v) ? undefined : `invalid CIDR "${v}"`));

export const hostname = (opts: { wildcard?: boolean } = {}) =>
  checkedString((v) =>
    isHostname(v, opts)
      ? undefined
      : `invalid hostname "${v}": must be DNS labels of letters, digits and '-' separated by '.'${opts.wildcard ? ", optionally starting with '*.'" : ''}`,
  );

export const address = () =>
  checkedString((v) =>
    isIpAddress(v) || isHostname(v) ? undefined : `invalid address "${v}": must be an IPv4 address, an IPv6 address or a hostname`,
  );

export const headerName = () =>
  checkedString((v) => (isHeaderName(v) ? undefined : `invalid header name "${v}": must be HTTP token characters (letters, digits and !#$%&'*+-.^_\`|~)`));

/** Why a pattern does not compile as a JavaScript RegExp, or undefined when it does. */
export function regexProblem(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
    return undefined;
  } catch (err: unknown) {
    return `invalid regular expression "${pattern}": ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Name of another object: a DNS-1123 subdomain, like metadata.name. */
export const objectName = () => nameSchema;

/** Namespace of another object: a DNS-1123 label, like metadata.namespace. */
export const namespaceName = () => namespaceSchema;

export { labelsSchema };

/**
 * A `when` for cross-field refinements: run them as long as the fields they read parsed
 * cleanly, even if unrelated fields have problems, so one pass reports every problem.
 */
export function whenFieldsValid(...fields: string[]) {
  return (payload: { value: unknown; issues: readonly { path?: readonly PropertyKey[] }[] }): boolean =>
    typeof payload.value === 'object' &&
    payload.value !== null &&
    !payload.issues.some((i) => {
      const head = i.path?.[0];
      return head === undefined || fields.includes(String(head));
    });
}
