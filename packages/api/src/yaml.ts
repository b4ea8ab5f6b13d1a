import { isMap, isSeq, LineCounter, parseAllDocuments, stringify, type Document, type Node } from 'yaml';

export interface YamlDocument {
  /** 0-based position among the returned objects (a `kind: List` contributes one per item). */
  index: number;
  /** 1-based line where the object starts in the text. */
  line: number;
  object: unknown;
}

export type ParseYamlResult = { ok: true; docs: YamlDocument[] } | { ok: false; error: string };

function where(source: string | undefined, line: number, col?: number): string {
  const pos = col === undefined ? `${line}` : `${line}:${col}`;
  return source ? `${source}:${pos}` : pos;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return `a ${typeof v}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses a multi-document YAML (or JSON, which is YAML) stream into objects.
 * Empty and comment-only documents are skipped; `kind: List` documents are expanded into
 * their `items`. Errors name the source, line and column, like a compiler.
 */
export function parseYamlDocuments(text: string, source?: string): ParseYamlResult {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  // A stream of zero documents parses to an empty array (an EmptyStream); nothing to do.
  const documents: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const docs: YamlDocument[] = [];
  const lineOf = (node: Node | null | undefined, fallback: number): number =>
    node?.range ? lineCounter.linePos(node.range[0]).line : fallback;

  for (const [docIndex, doc] of documents.entries()) {
    const firstError = doc.errors[0];
    if (firstError) {
      const pos = firstError.linePos?.[0] ?? lineCounter.linePos(firstError.pos[0]);
      const message = firstError.message.split('\n')[0] ?? firstError.message;
      return { ok: false, error: `${where(source, pos.line, pos.col)}: ${message}` };
    }
    if (doc.contents === null) continue; // empty or comment-only document
    const startLine = lineOf(doc.contents, lineCounter.linePos(doc.range[0]).line);
    let object: unknown;
    try {
      object = doc.toJS({ maxAliasCount: 100 });
    } catch (err: unknown) {
      const message = err instanceof Error ? err.message : String(err);
      return { ok: false, error: `${where(source, startLine)}: ${message}` };
    }
    if (object === null || object === undefined) continue;
    if (!isPlainObject(object)) {
      return {
        ok: false,
        error: `${where(source, startLine)}: document ${docIndex + 1} must be an object with apiVersion and kind, found ${describeValue(object)}`,
      };
    }
    if (object['kind'] === 'List' && 'items' in object) {
      const items = object['items'];
      const itemsNode = isMap(doc.contents) ? doc.contents.get('items', true) : undefined;
      if (!Array.isArray(items)) {
        return { ok: false, error: `${where(source, lineOf(itemsNode, startLine))}: items of a List must be a list` };
      }
      for (const [i, item] of items.entries()) {
        const itemNode = isSeq(itemsNode) ? (itemsNode.items[i] as Node | undefined) : undefined;
        const line = lineOf(itemNode, startLine);
        if (!isPlainObject(item)) {
          return { ok: false, error: `${where(source, line)}: items[${i}] of the List in document ${docIndex + 1} must be an object, found ${describeValue(item)}` };
        }
        docs.push({ index: docs.length, line, object: item });
      }
      continue;
    }
    docs.push({ index: docs.length, line: startLine, object });
  }
  return { ok: true, docs };
}

/** Block-style YAML, no line folding, keys in insertion order, no anchors for repeated objects. */
export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false, indentSeq: true });
}
