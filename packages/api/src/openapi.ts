import { z } from 'zod';
import { KINDS, type KindName } from './kinds.js';
import { RESOURCE_SCHEMAS } from './schemas/registry.js';

/**
 * The published schema of every kind, as an OpenAPI 3.0 document. It describes what users
 * write (defaults shown as `default`), and its descriptions are what `sluicectl explain` prints.
 */
export function openApiDocument(): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  for (const k of KINDS) {
    const schema = RESOURCE_SCHEMAS[k.kind as KindName].document;
    const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    delete json['$schema'];
    schemas[k.kind] = {
      ...json,
      'x-sluice-kind': { kind: k.kind, plural: k.plural, shortNames: k.shortNames, namespaced: k.namespaced, userWritable: k.userWritable },
    };
  }
  return { openapi: '3.0.3', info: { title: 'Sluice', version: 'v1' }, paths: {}, components: { schemas } };
}
