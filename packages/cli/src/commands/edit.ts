import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parseYamlDocuments, toYaml, type KindInfo } from '@sluice/api';
import { errnoMessage, isErrno } from '../config.js';
import { CliError, errorLines, isCliError } from '../errors.js';
import type { Io } from '../io.js';
import { isRecord, metadata, objectRef, type ApiObject } from '../object.js';
import { parseNamedResourceArgs } from '../resource-args.js';
import type { Session } from '../session.js';
import { withExamples } from './examples.js';

export const EDIT_HEADER = `# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving, this file is
# kept and its path printed, so your changes are not lost.
#
`;

/** `$SLUICE_EDITOR`, `$EDITOR`, else `vi`, split on spaces like kubectl (`code --wait`). */
export function editorCommand(env: Readonly<Record<string, string | undefined>>): string[] {
  for (const name of ['SLUICE_EDITOR', 'EDITOR']) {
    const value = env[name]?.trim();
    if (value !== undefined && value !== '') return value.split(/\s+/);
  }
  return ['vi'];
}

/** Deep equality of JSON values, ignoring key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  }
  if (isRecord(a) && isRecord(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && sameJson(a[k], b[k]));
  }
  return false;
}

async function runEditor(io: Io, file: string): Promise<void> {
  const [command = 'vi', ...args] = editorCommand(io.env);
  // The editor owns the terminal: Ctrl-C belongs to it, not to us.
  const release = io.holdInterrupts();
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(command, [...args, file], { stdio: 'inherit', env: { ...io.env } });
      child.once('error', (error) => {
        const why = isErrno(error, 'ENOENT') ? 'not found' : errnoMessage(error);
        reject(new CliError('editor', `cannot start the editor "${command}": ${why} (set SLUICE_EDITOR or EDITOR)`, { cause: error }));
      });
      child.once('exit', (code, signal) => {
        if (code === 0) resolve();
        else reject(new CliError('editor', `the editor "${command}" ${signal !== null ? `was killed by ${signal}` : `exited with status ${code}`}; nothing was changed`));
      });
    });
  } finally {
    release();
  }
}

export async function runEdit(session: Session, info: KindInfo, name: string): Promise<void> {
  const { io } = session;
  const client = await session.client();
  const { namespace } = await session.connection();
  const ns = info.namespaced ? namespace : undefined;
  const original = await client.get(info, ns, name);
  const dir = await mkdtemp(join(tmpdir(), 'sluicectl-edit-'));
  const file = join(dir, `${info.singular}-${name}.yaml`);
  let keep = false;
  try {
    await writeFile(file, EDIT_HEADER + toYaml(original), { mode: 0o600 });
    await runEditor(io, file);
    const text = await readFile(file, 'utf8');
    const parsed = parseYamlDocuments(text, file);
    if (!parsed.ok) {
      keep = true;
      throw new CliError('input', parsed.error, { details: [`error: the edit was not saved; your changes are kept in ${file}`] });
    }
    const [doc, ...more] = parsed.docs;
    if (doc === undefined) {
      io.err('Edit cancelled, saved file was empty.\n');
      return;
    }
    if (more.length > 0 || !isRecord(doc.object)) {
      keep = true;
      throw new CliError('input', `${file}: expected exactly one object, found ${parsed.docs.length}`, {
        details: [`error: the edit was not saved; your changes are kept in ${file}`],
      });
    }
    const edited: ApiObject = doc.object;
    if (sameJson(edited, original)) {
      io.err('Edit cancelled, no changes made.\n');
      return;
    }
    // Replace only if nobody changed the object since we read it (409 otherwise).
    const body: ApiObject = { ...edited, metadata: { ...metadata(edited), resourceVersion: metadata(original)['resourceVersion'] } };
    try {
      await client.replace(info, ns, name, body);
    } catch (error: unknown) {
      keep = true;
      const hint =
        isCliError(error, 'conflict')
          ? `${objectRef(original, info)} was changed by someone else since it was opened; your changes are kept in ${file} (run sluicectl edit again and redo them, or apply that file)`
          : `the edit was not saved; your changes are kept in ${file}`;
      if (isCliError(error)) {
        throw new CliError(error.code, error.message, { details: [...error.details, `error: ${hint}`], causes: error.causes, cause: error });
      }
      throw new CliError('internal', errorLines(error)[0]?.replace(/^error: /, '') ?? 'edit failed', { details: [`error: ${hint}`], cause: error });
    }
    io.out(`${objectRef(original, info)} edited\n`);
  } finally {
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
}

export function registerEdit(parent: Command, session: Session): void {
  const cmd = parent
    .command('edit')
    .description('Edit a resource in $SLUICE_EDITOR, $EDITOR or vi, and save it back')
    .argument('<kind>', 'resource type or KIND/NAME')
    .argument('[name]', 'name of the object')
    .action(async (kind: string, name: string | undefined) => {
      const targets = parseNamedResourceArgs(name === undefined ? [kind] : [kind, name], 'edit');
      const [target, ...more] = targets;
      if (target === undefined || more.length > 0) throw new CliError('usage', 'edit works on one object at a time');
      await runEdit(session, target.info, target.name);
    });
  withExamples(
    cmd,
    `
# Edit an upstream in your editor
sluicectl edit upstream shop-v1

# With another editor
SLUICE_EDITOR="code --wait" sluicectl edit route/shop
`,
  );
}
