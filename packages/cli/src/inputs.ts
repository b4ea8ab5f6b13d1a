// Reading `-f FILE|DIR|-`: multi-document YAML or JSON, each object remembered with where
// it came from so server errors about `items[i]` can point back at the file and line.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { isMap, isSeq, LineCounter, parseAllDocuments, type Node } from 'yaml';
import { kindInfo, parseYamlDocuments } from '@sluice/api';
import { errnoMessage, isErrno, type Connection } from './config.js';
import { CliError } from './errors.js';
import type { Io } from './io.js';
import { isRecord, namespaceOf, type ApiObject } from './object.js';

export interface InputSource {
  /** The file as the user named it (`stdin` for `-`). */
  file: string;
  /** 1-based position of the object in its file (a List counts each item). */
  document: number;
  /** 1-based line where the object starts. */
  line: number;
  /** The whole text of the file, for locating fields in errors. */
  text: string;
}

export interface InputObject {
  object: ApiObject;
  source: InputSource;
}

const MANIFEST_EXT = /\.(ya?ml|json)$/i;

async function filesIn(dir: string, recursive: boolean): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (recursive) out.push(...(await filesIn(p, true)));
    } else if (MANIFEST_EXT.test(e.name)) {
      out.push(p);
    }
  }
  return out;
}

/** Expands `-f` arguments into the files to read, in order: a directory gives its manifests sorted by name. */
export async function expandPaths(paths: readonly string[], options: { recursive: boolean; cwd: string }): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    if (p === '-') {
      files.push('-');
      continue;
    }
    const abs = resolve(options.cwd, p);
    let isDir: boolean;
    try {
      isDir = (await stat(abs)).isDirectory();
    } catch (error: unknown) {
      if (isErrno(error, 'ENOENT')) throw new CliError('input', `the path "${p}" does not exist`);
      throw new CliError('input', `cannot read ${p}: ${errnoMessage(error)}`, { cause: error });
    }
    if (!isDir) {
      files.push(p);
      continue;
    }
    try {
      const inDir = await filesIn(abs, options.recursive);
      // Keep names relative to what the user typed, so messages read like the command line.
      files.push(...inDir.map((f) => join(p, relative(abs, f))));
    } catch (error: unknown) {
      throw new CliError('input', `cannot read directory ${p}: ${errnoMessage(error)}`, { cause: error });
    }
  }
  return files;
}

/** Reads and parses every `-f` input. Malformed YAML fails with `file:line:col: message`. */
export async function readInputs(paths: readonly string[], options: { recursive: boolean; io: Io }): Promise<InputObject[]> {
  if (paths.length === 0) throw new CliError('usage', 'must specify -f FILE, a directory or - (stdin)');
  if (paths.filter((p) => p === '-').length > 1) throw new CliError('usage', 'stdin (-) can be given only once');
  const files = await expandPaths(paths, { recursive: options.recursive, cwd: options.io.cwd });
  const out: InputObject[] = [];
  for (const file of files) {
    let text: string;
    const name = file === '-' ? 'stdin' : file;
    try {
      text = file === '-' ? await options.io.readStdin() : await readFile(resolve(options.io.cwd, file), 'utf8');
    } catch (error: unknown) {
      throw new CliError('input', `cannot read ${name}: ${errnoMessage(error)}`, { cause: error });
    }
    const parsed = parseYamlDocuments(text, name);
    if (!parsed.ok) throw new CliError('input', parsed.error);
    for (const doc of parsed.docs) {
      if (!isRecord(doc.object)) continue; // parseYamlDocuments only returns objects
      out.push({ object: doc.object, source: { file: name, document: doc.index + 1, line: doc.line, text } });
    }
  }
  return out;
}

/**
 * Fills in the namespace of namespaced objects that have none. With an explicit `-n`, an
 * object from another namespace is refused, as kubectl does.
 */
export function withNamespaces(inputs: readonly InputObject[], connection: Pick<Connection, 'namespace' | 'namespaceExplicit'>): InputObject[] {
  return inputs.map((input) => {
    const info = kindInfo(typeof input.object['kind'] === 'string' ? input.object['kind'] : '');
    if (info !== undefined && !info.namespaced) return input;
    const ns = namespaceOf(input.object);
    if (ns !== undefined && ns !== '') {
      if (connection.namespaceExplicit && ns !== connection.namespace) {
        throw new CliError(
          'usage',
          `the namespace from the provided object "${ns}" does not match the namespace "${connection.namespace}". You must pass '--namespace=${ns}' to perform this operation.`,
          { details: [`(in ${describeSource(input.source)})`] },
        );
      }
      return input;
    }
    const meta = isRecord(input.object['metadata']) ? input.object['metadata'] : {};
    return { ...input, object: { ...input.object, metadata: { ...meta, namespace: connection.namespace } } };
  });
}

export function describeSource(source: InputSource, line = source.line): string {
  return `${source.file} (document ${source.document}, line ${line})`;
}

/** Splits `spec.rules[0].backendRefs[1].weight` into keys and indexes. */
export function parseFieldPath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[1] !== undefined) out.push(m[1]);
  }
  return out;
}

/**
 * The line of `fieldPath` inside the object that starts at `objectLine` of `text`, or of
 * its deepest ancestor present in the file (a missing field points at its parent).
 */
export function fieldLine(text: string, objectLine: number, fieldPath: string): number | undefined {
  const lineCounter = new LineCounter();
  let docs;
  try {
    docs = parseAllDocuments(text, { lineCounter });
  } catch {
    return undefined;
  }
  if (!Array.isArray(docs)) return undefined;
  const lineOf = (node: Node): number | undefined => (node.range ? lineCounter.linePos(node.range[0]).line : undefined);
  // The object is a document's contents or an item of a List document starting at objectLine.
  let root: Node | undefined;
  for (const doc of docs) {
    const contents = doc.contents;
    if (contents === null) continue;
    if (lineOf(contents) === objectLine) {
      root = contents;
      break;
    }
    if (isMap(contents)) {
      const items = contents.get('items', true);
      if (isSeq(items)) {
        const item = items.items.find((n) => isMap(n) && lineOf(n) === objectLine);
        if (item !== undefined && isMap(item)) {
          root = item;
          break;
        }
      }
    }
  }
  if (root === undefined) return undefined;
  let node: Node = root;
  let line = lineOf(node);
  for (const key of parseFieldPath(fieldPath)) {
    let next: unknown;
    if (typeof key === 'number') {
      next = isSeq(node) ? node.items[key] : undefined;
    } else if (isMap(node)) {
      // Point at the key (the line a person reads), falling back to the value.
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (pair !== undefined) {
        const keyNode = pair.key as Node | null;
        const keyLine = keyNode !== null ? lineOf(keyNode) : undefined;
        if (keyLine !== undefined) line = keyLine;
        next = pair.value;
        if (next === null || typeof next !== 'object') break;
        node = next as Node;
        continue;
      }
    }
    if (next === undefined || next === null || typeof next !== 'object') break;
    node = next as Node;
    line = lineOf(node) ?? line;
  }
  return line;
}
