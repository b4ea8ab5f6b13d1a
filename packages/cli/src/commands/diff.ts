import type { Command } from 'commander';
import { kindInfo, toYaml } from '@sluice/api';
import { unifiedDiff } from '../diff.js';
import { CliError } from '../errors.js';
import { readInputs, withNamespaces } from '../inputs.js';
import { isRecord, kindOf, nameOf, namespaceOf, userOwnedPart, type ApiObject } from '../object.js';
import type { Session } from '../session.js';
import { applyInputs } from './apply.js';
import { collect, withExamples } from './examples.js';

/**
 * Reorders `value`'s keys to follow `reference` wherever both have them, so the diff shows
 * changes of content, not of key order between two server responses.
 */
export function alignKeys(value: unknown, reference: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map((v, i) => alignKeys(v, Array.isArray(reference) ? reference[i] : undefined));
  }
  if (!isRecord(value)) return value;
  const ref = isRecord(reference) ? reference : {};
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(ref)) if (key in value) out[key] = alignKeys(value[key], ref[key]);
  for (const key of Object.keys(value)) if (!(key in out)) out[key] = alignKeys(value[key], undefined);
  return out;
}

/** The texts diff compares: the live object's user-owned part and the dry-run result's. */
export function diffTexts(live: ApiObject | undefined, merged: ApiObject): { live: string; merged: string } {
  const liveOwned = live === undefined ? undefined : userOwnedPart(live);
  const mergedOwned = alignKeys(userOwnedPart(merged), liveOwned);
  return { live: liveOwned === undefined ? '' : toYaml(liveOwned), merged: toYaml(mergedOwned) };
}

export async function runDiff(session: Session, filenames: string[], recursive: boolean): Promise<void> {
  const connection = await session.connection();
  const inputs = withNamespaces(await readInputs(filenames, { recursive, io: session.io }), connection);
  if (inputs.length === 0) throw new CliError('input', 'no objects passed to diff');
  const client = await session.client();
  // The server's dry-run result carries its defaults, so defaults never show as changes.
  const results = await applyInputs(session, inputs, true);
  let differs = false;
  for (const [i, result] of results.entries()) {
    const input = inputs[i];
    if (input === undefined) continue;
    const info = kindInfo(result.kind || kindOf(input.object));
    if (info === undefined) throw new CliError('bad-response', `the controller accepted an object of unknown kind "${result.kind}"`);
    const name = result.name || nameOf(input.object);
    const namespace = info.namespaced ? (result.namespace ?? namespaceOf(input.object)) : undefined;
    const live = await client.getIfExists(info, namespace, name);
    const texts = diffTexts(live, result.object);
    const path = `${info.singular}/${namespace === undefined ? '' : `${namespace}/`}${name}`;
    const text = unifiedDiff(texts.live, texts.merged, { fromName: `live/${path}`, toName: `merged/${path}` });
    if (text !== '') {
      differs = true;
      session.io.out(`diff -u -N live/${path} merged/${path}\n${text}`);
    }
  }
  if (differs) session.outcome = 'differences';
}

export function registerDiff(parent: Command, session: Session): void {
  const cmd = parent
    .command('diff')
    .description('Show what apply would change, as a unified diff (exit 0: same, 1: differs, >1: error)')
    .option('-f, --filename <path>', 'a file, directory or - (repeatable)', collect)
    .option('-R, --recursive', 'read directories given with -f recursively')
    .action(async (flags: { filename?: string[]; recursive?: boolean }) => {
      const filenames = flags.filename ?? [];
      if (filenames.length === 0) throw new CliError('usage', 'must specify -f FILE, a directory or - (stdin)');
      await runDiff(session, filenames, flags.recursive === true);
    });
  withExamples(
    cmd,
    `
# What would applying this directory change?
sluicectl diff -f config/

# In a script: apply only when something differs
sluicectl diff -f config/ >/dev/null || [ $? -gt 1 ] || sluicectl apply -f config/
`,
  );
}
