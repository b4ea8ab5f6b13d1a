import { z } from 'zod';
import { isDns1123Label, isDns1123Subdomain } from './net.js';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

const LABEL_NAME_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Why a label or annotation key is invalid, or undefined when it is valid (Kubernetes rules). */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) {
    return `invalid key "${key}": the prefix before "/" must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)`;
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME_RE.test(name)) {
    return `invalid key "${key}": the name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, with an optional "prefix/"`;
  }
  return undefined;
}

/** Why a label value is invalid, or undefined when it is valid. Empty values are allowed. */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !LABEL_NAME_RE.test(value)) {
    return `invalid label value "${value}": must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

export function isLabelKey(key: string): boolean {
  return labelKeyProblem(key) === undefined;
}

export function isLabelValue(value: string): boolean {
  return labelValueProblem(value) === undefined;
}

export const labelsSchema = z
  .record(z.string(), z.string())
  .superRefine((labels, ctx) => {
    for (const [k, v] of Object.entries(labels)) {
      const problem = labelKeyProblem(k) ?? labelValueProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', path: [k], message: problem });
    }
  });

const annotationsSchema = z
  .record(z.string(), z.string())
  .superRefine((annotations, ctx) => {
    for (const k of Object.keys(annotations)) {
      const problem = labelKeyProblem(k);
      if (problem) ctx.addIssue({ code: 'custom', path: [k], message: problem });
    }
  });

export const nameSchema = z
  .string()
  .superRefine((v, ctx) => {
    if (!isDns1123Subdomain(v)) {
      ctx.addIssue({
        code: 'custom',
        message: `invalid name "${v}": must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters`,
      });
    }
  });

export const namespaceSchema = z.string().superRefine((v, ctx) => {
  if (!isDns1123Label(v)) {
    ctx.addIssue({
      code: 'custom',
      message: `invalid namespace "${v}": must be lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`,
    });
  }
});

const metaName = nameSchema.describe(
  'Name of the object, unique per kind (and namespace, for namespaced kinds). A DNS-1123 subdomain: lowercase letters, digits, "-" and ".", at most 253 characters.',
);

const metaFields = {
  labels: labelsSchema
    .optional()
    .describe('Key/value pairs for selecting objects (`sluicectl get -l app=shop`). Keys and values follow Kubernetes label rules.'),
  annotations: annotationsSchema.optional().describe('Free-form key/value notes for tools and people; not used for selection.'),
  uid: z.string().optional().describe('Server-assigned unique id. Set by the controller; kept as given on apply.'),
  resourceVersion: z
    .string()
    .optional()
    .describe('Store revision of this object, used for compare-and-swap updates. Set by the controller.'),
  generation: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe('Incremented by the controller each time the spec changes. Set by the controller.'),
  creationTimestamp: z.string().optional().describe('When the object was created (RFC 3339). Set by the controller.'),
};

/** Metadata of namespaced kinds: the namespace defaults to `default`. */
export const namespacedMetaSchema = z
  .strictObject({
    name: metaName,
    namespace: namespaceSchema
      .default('default')
      .describe('Namespace of the object (DNS-1123 label). Default: `default`.'),
    ...metaFields,
  })
  .describe('Standard object metadata: name, namespace, labels, annotations, and server-managed fields.');

/** Metadata of cluster-scoped kinds: a namespace is ignored and dropped, as Kubernetes does. */
export const clusterMetaSchema = z
  .strictObject({
    name: metaName,
    ...metaFields,
    namespace: z.string().optional().describe('Ignored: this kind is cluster-scoped. Dropped on validation.'),
  })
  // `namespace?: undefined` keeps `metadata.namespace` readable on every kind without a cast.
  .transform(({ namespace: _ignored, ...rest }): typeof rest & { namespace?: undefined } => rest)
  .describe('Standard object metadata: name, labels, annotations, and server-managed fields (cluster-scoped: no namespace).');

export const conditionSchema = z
  .strictObject({
    type: z.string().min(1).describe('Condition type, CamelCase, e.g. `Accepted`, `ResolvedRefs`, `Programmed`, `Healthy`.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('Whether the condition holds: True, False or Unknown.'),
    reason: z.string().describe('Machine-readable CamelCase reason for the last transition.'),
    message: z.string().describe('Human-readable details for the last transition.'),
    lastTransitionTime: z.string().describe('When the status last changed (RFC 3339).'),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('The metadata.generation this condition was computed from; older than the current generation means stale.'),
  })
  .describe('A Kubernetes-style status condition.');

export const conditionsSchema = z
  .array(conditionSchema)
  .optional()
  .describe('Current state of the object as a list of conditions, written by the controller.');

// Compile-time guard: the schemas and the published interfaces must not drift apart.
type Equals<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _conditionMatches: Equals<z.output<typeof conditionSchema>, Condition> = true;
const _metaMatches: Equals<z.output<typeof namespacedMetaSchema>, ObjectMeta & { namespace: string }> = true;
void _conditionMatches;
void _metaMatches;
