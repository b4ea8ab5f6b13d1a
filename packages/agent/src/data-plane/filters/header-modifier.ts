import type { HeaderModifier } from '@sluice/proto';

/**
 * Gateway API RequestHeaderModifier / ResponseHeaderModifier, compiled once: names lower
 * cased. `set` replaces every value of a header, `add` appends one, `remove` drops them all.
 */
export class CompiledHeaderModifier {
  private readonly set: readonly (readonly [string, string])[];
  private readonly add: readonly (readonly [string, string])[];
  /** Every name whose existing values go: set and remove. */
  private readonly drop: ReadonlySet<string>;

  constructor(config: HeaderModifier) {
    this.set = config.set.map((h) => [h.name.toLowerCase(), h.value] as const);
    this.add = config.add.map((h) => [h.name.toLowerCase(), h.value] as const);
    this.drop = new Set([...config.remove.map((n) => n.toLowerCase()), ...this.set.map(([n]) => n)]);
  }

  /** Request side: headers as a flat [name, value, name, value ...] list (any case). */
  applyToList(list: string[]): string[] {
    let out = list;
    if (this.drop.size > 0) {
      out = [];
      for (let i = 0; i < list.length; i += 2) {
        const name = list[i] as string;
        if (!this.drop.has(name.toLowerCase())) out.push(name, list[i + 1] as string);
      }
    }
    for (const [name, value] of this.set) out.push(name, value);
    for (const [name, value] of this.add) out.push(name, value);
    return out;
  }

  /** Response side: headers as an object with lower-case names (as undici parses them). */
  applyToObject(headers: Record<string, string | string[] | undefined>): void {
    for (const name of this.drop) delete headers[name];
    for (const [name, value] of this.set) headers[name] = value;
    for (const [name, value] of this.add) {
      const old = headers[name];
      headers[name] = old === undefined ? value : Array.isArray(old) ? [...old, value] : [old, value];
    }
  }
}
