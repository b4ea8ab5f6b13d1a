import { z } from 'zod';
import { API_VERSION, type KindName } from '../kinds.js';
import { clusterMetaSchema, conditionsSchema, namespacedMetaSchema } from '../meta.js';

/** apiVersion, kind and metadata: the part every kind shares. */
export function envelope<K extends KindName>(kind: K) {
  return {
    apiVersion: z.literal(API_VERSION).describe(`API version of the object. Always \`${API_VERSION}\`.`),
    kind: z.literal(kind).describe(`Kind of the object: \`${kind}\`.`),
  };
}

export const namespacedMetadata = () => ({ metadata: namespacedMetaSchema });
export const clusterMetadata = () => ({ metadata: clusterMetaSchema });

/**
 * Status as accepted on input: any object, passed through unchanged. Only the controller
 * writes status; the server decides whether to keep what a client sent.
 */
export const inputStatus = () =>
  z
    .record(z.string(), z.unknown())
    .optional()
    .describe('Observed state, written by the controller. Accepted on input and passed through unchanged.');

/** The common status shape: a list of conditions, plus per-kind fields. */
export function statusSchema<S extends z.ZodRawShape>(description: string, fields: S) {
  return z
    .strictObject({ conditions: conditionsSchema, ...fields })
    .optional()
    .describe(`${description} Written by the controller; users do not set it.`);
}
