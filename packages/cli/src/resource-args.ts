import { KINDS, resolveKind, type KindInfo } from '@sluice/api';
import { CliError } from './errors.js';

/** One kind and the names asked for; no names means "every object of the kind". */
export interface ResourceTarget {
  info: KindInfo;
  names: string[];
}

export function knownKindsHint(): string {
  return KINDS.map((k) => `${k.plural} (${[k.singular, ...k.shortNames].join(', ')})`).join(', ');
}

export function requireKind(name: string): KindInfo {
  const info = resolveKind(name);
  if (info === undefined) {
    throw new CliError('usage', `unknown resource type "${name}"`, { details: [`known types: ${knownKindsHint()}`] });
  }
  return info;
}

/**
 * kubectl's argument forms: `KIND [NAME...]`, `KIND1,KIND2`, and `KIND/NAME...`
 * (`upstream/shop-v1 route/shop`). Kinds accept singular, plural and short names.
 */
export function parseResourceArgs(args: readonly string[]): ResourceTarget[] {
  const [first, ...rest] = args;
  if (first === undefined || first === '') {
    throw new CliError('usage', 'you must specify the type of resource', { details: [`known types: ${knownKindsHint()}`] });
  }
  const slashed = args.filter((a) => a.includes('/'));
  if (slashed.length > 0) {
    if (slashed.length !== args.length) {
      throw new CliError(
        'usage',
        `there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'sluicectl get upstream/shop-v1' instead of 'sluicectl get upstream upstream/shop-v1')`,
      );
    }
    const targets: ResourceTarget[] = [];
    for (const arg of args) {
      const slash = arg.indexOf('/');
      const kind = arg.slice(0, slash);
      const name = arg.slice(slash + 1);
      if (kind === '' || name === '' || name.includes('/')) throw new CliError('usage', `"${arg}" is not in KIND/NAME form`);
      const info = requireKind(kind);
      const existing = targets.find((t) => t.info.kind === info.kind);
      if (existing) existing.names.push(name);
      else targets.push({ info, names: [name] });
    }
    return targets;
  }
  const kinds = first.split(',');
  if (kinds.some((k) => k === '')) throw new CliError('usage', `"${first}" is not a list of resource types`);
  const infos: KindInfo[] = [];
  for (const k of kinds) {
    const info = requireKind(k);
    if (!infos.some((i) => i.kind === info.kind)) infos.push(info);
  }
  return infos.map((info) => ({ info, names: [...rest] }));
}

/** For commands that act on named objects only (describe, edit, delete without -f). */
export function parseNamedResourceArgs(args: readonly string[], verb: string): { info: KindInfo; name: string }[] {
  const targets = parseResourceArgs(args);
  const out: { info: KindInfo; name: string }[] = [];
  for (const t of targets) {
    if (t.names.length === 0) throw new CliError('usage', `${verb} needs a NAME: sluicectl ${verb} ${t.info.singular} NAME`);
    for (const name of t.names) out.push({ info: t.info, name });
  }
  return out;
}
