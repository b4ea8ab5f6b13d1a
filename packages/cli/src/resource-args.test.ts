import { describe, expect, it } from 'vitest';
import { CliError } from './errors.js';
import { parseNamedResourceArgs, parseResourceArgs } from './resource-args.js';

const kinds = (args: string[]) => parseResourceArgs(args).map((t) => [t.info.kind, t.names]);

describe('parseResourceArgs', () => {
  it('accepts singular, plural and short names, any case', () => {
    expect(kinds(['upstream'])).toEqual([['Upstream', []]]);
    expect(kinds(['upstreams', 'a', 'b'])).toEqual([['Upstream', ['a', 'b']]]);
    expect(kinds(['us', 'a'])).toEqual([['Upstream', ['a']]]);
    expect(kinds(['Route'])).toEqual([['Route', []]]);
    expect(kinds(['tcproutes'])).toEqual([['TCPRoute', []]]);
  });

  it('accepts KIND/NAME, grouping by kind in order', () => {
    expect(kinds(['upstream/shop-v1', 'route/shop', 'us/shop-v2'])).toEqual([
      ['Upstream', ['shop-v1', 'shop-v2']],
      ['Route', ['shop']],
    ]);
  });

  it('accepts comma-separated kinds', () => {
    expect(kinds(['upstreams,routes'])).toEqual([
      ['Upstream', []],
      ['Route', []],
    ]);
  });

  it('rejects unknown kinds, listing the known ones', () => {
    const error = (() => {
      try {
        parseResourceArgs(['pods']);
      } catch (e) {
        return e as CliError;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(CliError);
    expect(error?.code).toBe('usage');
    expect(error?.message).toBe('unknown resource type "pods"');
    expect(error?.details.join()).toContain('upstreams (upstream, us)');
  });

  it('rejects mixing KIND NAME and KIND/NAME forms', () => {
    expect(() => parseResourceArgs(['upstream', 'upstream/a'])).toThrow(/no need to specify a resource type/);
    expect(() => parseResourceArgs(['upstream/'])).toThrow(/KIND\/NAME/);
    expect(() => parseResourceArgs([])).toThrow(/type of resource/);
  });

  it('named commands need names', () => {
    expect(parseNamedResourceArgs(['route', 'a', 'b'], 'describe').map((t) => t.name)).toEqual(['a', 'b']);
    expect(() => parseNamedResourceArgs(['route'], 'edit')).toThrow(/edit needs a NAME/);
  });
});
