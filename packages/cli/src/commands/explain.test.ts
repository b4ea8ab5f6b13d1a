import { describe, expect, it } from 'vitest';
import { openApiDocument } from '@sluice/api';
import { formatExplain, parseExplainTarget, typeName } from './explain.js';

describe('explain', () => {
  const doc = openApiDocument();

  it('parses KIND.field.path with any kind alias', () => {
    expect(parseExplainTarget('us.spec.healthCheck')).toEqual({ kind: 'Upstream', path: ['spec', 'healthCheck'] });
    expect(() => parseExplainTarget('pods')).toThrow(/unknown resource type/);
  });

  it('prints a field like kubectl explain', () => {
    const out = formatExplain(doc, { kind: 'Upstream', path: ['spec', 'healthCheck'], recursive: false });
    expect(out).toMatch(/^KIND: {7}Upstream\nVERSION: {4}sluice\/v1\n\nFIELD: healthCheck <Object>\n\nDESCRIPTION:\n {4}\S/);
    expect(out).toContain('FIELDS:\n  http\t<Object>\n    Probe with an HTTP request.');
    expect(out).toContain('  interval\t<string>\n');
  });

  it('walks into arrays and shows enums and required fields', () => {
    const out = formatExplain(doc, { kind: 'Upstream', path: ['spec', 'endpoints'], recursive: false });
    expect(out).toContain('FIELD: endpoints <[]Object>');
    expect(out).toMatch(/ {2}address\t<string> -required-/);
    const method = formatExplain(doc, { kind: 'Upstream', path: ['spec', 'healthCheck', 'http', 'method'], recursive: false });
    expect(method).toContain('ENUM:\n    GET\n    HEAD');
  });

  it('fails for an unknown field', () => {
    expect(() => formatExplain(doc, { kind: 'Upstream', path: ['spec', 'foo'], recursive: false })).toThrow('field "foo" does not exist');
  });

  it('prints nested names with --recursive', () => {
    const out = formatExplain(doc, { kind: 'Upstream', path: ['spec', 'healthCheck'], recursive: true });
    expect(out).toContain('  http\t<Object>\n    path\t<string>');
  });

  it('names types the kubectl way', () => {
    const schemas = { X: { type: 'object', properties: { a: { type: 'string' } } } };
    expect(typeName({ $ref: '#/components/schemas/X' }, schemas)).toBe('Object');
    expect(typeName({ type: 'object', additionalProperties: { type: 'string' } }, schemas)).toBe('map[string]string');
    expect(typeName({ type: 'array', items: { type: 'integer' } }, schemas)).toBe('[]integer');
    expect(typeName({ anyOf: [{ type: 'string' }, { type: 'integer' }] }, schemas)).toBe('string|integer');
  });
});
