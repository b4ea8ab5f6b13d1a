import type { Command } from 'commander';
import { API_VERSION } from '@sluice/api';
import { CliError } from '../errors.js';
import { asArray, asRecord, asString, isRecord } from '../object.js';
import { requireKind } from '../resource-args.js';
import type { Session } from '../session.js';
import { withExamples } from './examples.js';

type Schema = Record<string, unknown>;

const MAX_REF_DEPTH = 32;

/** Follows `$ref: #/components/schemas/X` (and allOf of one ref, a common wrapping). */
export function deref(schema: Schema, schemas: Record<string, unknown>): Schema {
  let cur = schema;
  for (let i = 0; i < MAX_REF_DEPTH; i++) {
    const ref = asString(cur['$ref']);
    if (ref !== undefined) {
      const name = ref.replace(/^#\/components\/schemas\//, '');
      const target = schemas[name];
      if (!isRecord(target)) throw new CliError('bad-response', `the OpenAPI document refers to a missing schema "${ref}"`);
      // Siblings of $ref (a description) win over the target's.
      const { $ref: _ref, ...siblings } = cur;
      cur = { ...target, ...siblings };
      continue;
    }
    const allOf = asArray(cur['allOf']).filter(isRecord);
    if (allOf.length === 1 && allOf[0] !== undefined && cur['properties'] === undefined) {
      const { allOf: _allOf, ...siblings } = cur;
      cur = { ...allOf[0], ...siblings };
      continue;
    }
    return cur;
  }
  throw new CliError('bad-response', 'the OpenAPI document has a $ref cycle');
}

function alternatives(schema: Schema): Schema[] {
  return [...asArray(schema['anyOf']), ...asArray(schema['oneOf']), ...asArray(schema['allOf'])].filter(isRecord);
}

function isNullSchema(s: Schema): boolean {
  return s['type'] === 'null';
}

/** kubectl's type names: `<Object>`, `<string>`, `<[]Object>`, `<map[string]string>`. */
export function typeName(schemaIn: Schema, schemas: Record<string, unknown>, depth = 0): string {
  const schema = deref(schemaIn, schemas);
  if (depth > 8) return 'Object';
  let type = schema['type'];
  if (Array.isArray(type)) type = type.find((t) => t !== 'null');
  if (type === undefined) {
    const alts = alternatives(schema).map((s) => deref(s, schemas)).filter((s) => !isNullSchema(s));
    if (alts.length > 0) {
      const names = [...new Set(alts.map((s) => typeName(s, schemas, depth + 1)))];
      return names.join('|');
    }
    if (schema['properties'] !== undefined) return 'Object';
    if (schema['enum'] !== undefined) return typeof asArray(schema['enum'])[0] === 'number' ? 'number' : 'string';
    return 'Object';
  }
  if (type === 'array') return `[]${isRecord(schema['items']) ? typeName(schema['items'], schemas, depth + 1) : 'Object'}`;
  if (type === 'object') {
    const ap = schema['additionalProperties'];
    if (schema['properties'] === undefined && isRecord(ap)) return `map[string]${typeName(ap, schemas, depth + 1)}`;
    return 'Object';
  }
  return typeof type === 'string' ? type : 'Object';
}

/** The object schema to look fields up in: arrays by their items, unions by their members. */
function fieldHolder(schemaIn: Schema, schemas: Record<string, unknown>): { properties: Record<string, Schema>; required: Set<string> } {
  const properties: Record<string, Schema> = {};
  const required = new Set<string>();
  const visit = (s: Schema, depth: number): void => {
    if (depth > 8) return;
    const schema = deref(s, schemas);
    if (schema['type'] === 'array' && isRecord(schema['items'])) {
      visit(schema['items'], depth + 1);
      return;
    }
    for (const [k, v] of Object.entries(asRecord(schema['properties']))) if (isRecord(v) && !(k in properties)) properties[k] = v;
    for (const r of asArray(schema['required'])) if (typeof r === 'string') required.add(r);
    for (const alt of alternatives(schema)) visit(alt, depth + 1);
    const ap = schema['additionalProperties'];
    if (schema['properties'] === undefined && isRecord(ap)) visit(ap, depth + 1);
  };
  visit(schemaIn, 0);
  return { properties, required };
}

function descriptionOf(schema: Schema, schemas: Record<string, unknown>): string {
  return asString(schema['description']) ?? asString(deref(schema, schemas)['description']) ?? '';
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(/\s+/).filter((w) => w !== '')) {
      if (line !== '' && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else {
        line = line === '' ? word : `${line} ${word}`;
      }
    }
    lines.push(line);
  }
  return lines;
}

function enumValues(schema: Schema, schemas: Record<string, unknown>): string[] {
  const s = deref(schema, schemas);
  const values = asArray(s['enum']);
  const fromAlts = alternatives(s).flatMap((a) => asArray(deref(a, schemas)['const'] ?? undefined));
  return [...values, ...fromAlts].map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
}

export interface ExplainOptions {
  kind: string;
  path: string[];
  recursive: boolean;
}

/** kubectl explain's layout for a kind or one of its fields. */
export function formatExplain(openapi: Record<string, unknown>, o: ExplainOptions): string {
  const schemas = asRecord(asRecord(openapi['components'])['schemas']);
  const root = schemas[o.kind];
  if (!isRecord(root)) throw new CliError('not-found', `the server has no schema for ${o.kind}`);
  let schema: Schema = root;
  let required = false;
  for (const segment of o.path) {
    const holder = fieldHolder(schema, schemas);
    const next = holder.properties[segment];
    if (next === undefined) throw new CliError('not-found', `field "${segment}" does not exist`);
    required = holder.required.has(segment);
    schema = next;
  }
  const out: string[] = [`KIND:       ${o.kind}`, `VERSION:    ${API_VERSION}`, ''];
  const last = o.path[o.path.length - 1];
  if (last !== undefined) {
    out.push(`FIELD: ${last} <${typeName(schema, schemas)}>${required ? ' -required-' : ''}`, '');
    const values = enumValues(schema, schemas);
    if (values.length > 0) out.push('ENUM:', ...values.map((v) => `    ${v}`), '');
  }
  const description = descriptionOf(schema, schemas);
  out.push('DESCRIPTION:', ...(description === '' ? ['    <empty>'] : wrap(description, 76).map((l) => `    ${l}`)), '');
  const holder = fieldHolder(schema, schemas);
  const names = Object.keys(holder.properties);
  if (names.length > 0) {
    out.push('FIELDS:');
    if (o.recursive) {
      out.push(...recursiveFields(schema, schemas, 1, new Set()));
    } else {
      for (const name of names) {
        const field = holder.properties[name] ?? {};
        out.push(`  ${name}\t<${typeName(field, schemas)}>${holder.required.has(name) ? ' -required-' : ''}`);
        const first = descriptionOf(field, schemas).split('\n')[0] ?? '';
        if (first !== '') out.push(`    ${first}`);
        const values = enumValues(field, schemas);
        if (values.length > 0) out.push(`    enum: ${values.join(', ')}`);
        out.push('');
      }
    }
  }
  return `${out.join('\n').replace(/\n+$/, '')}\n`;
}

function recursiveFields(schema: Schema, schemas: Record<string, unknown>, level: number, seen: Set<Schema>): string[] {
  const holder = fieldHolder(schema, schemas);
  const lines: string[] = [];
  for (const [name, field] of Object.entries(holder.properties)) {
    lines.push(`${'  '.repeat(level)}${name}\t<${typeName(field, schemas)}>${holder.required.has(name) ? ' -required-' : ''}`);
    const resolved = deref(field, schemas);
    if (seen.has(resolved) || level > 12) continue;
    lines.push(...recursiveFields(field, schemas, level + 1, new Set([...seen, resolved])));
  }
  return lines;
}

/** `upstream.spec.healthCheck` -> kind Upstream, path [spec, healthCheck]. */
export function parseExplainTarget(target: string): { kind: string; path: string[] } {
  const [kindName = '', ...path] = target.split('.');
  const info = requireKind(kindName);
  if (path.some((p) => p === '')) throw new CliError('usage', `"${target}" is not a valid field path`);
  return { kind: info.kind, path };
}

export function registerExplain(parent: Command, session: Session): void {
  const cmd = parent
    .command('explain')
    .description("Show the documentation of a kind or one of its fields (from the server's OpenAPI schema)")
    .argument('<target>', 'KIND or KIND.field.path, e.g. upstream.spec.healthCheck')
    .option('--recursive', 'print every nested field name')
    .action(async (target: string, flags: { recursive?: boolean }) => {
      const parsed = parseExplainTarget(target);
      const client = await session.client();
      const openapi = await client.openapi();
      session.io.out(formatExplain(openapi, { ...parsed, recursive: flags.recursive === true }));
    });
  withExamples(
    cmd,
    `
# The fields of an Upstream
sluicectl explain upstream

# One field, with its sub-fields
sluicectl explain upstream.spec.healthCheck

# Every field of a Route, as a tree
sluicectl explain route --recursive
`,
  );
}
