import type { UrlRewrite } from '@sluice/proto';

/** Gateway API URLRewrite: a new Host and/or path before the request goes upstream. */
export class CompiledUrlRewrite {
  readonly hostname: string;
  private readonly fullPath: string | undefined;
  private readonly prefixReplacement: string | undefined;

  constructor(config: UrlRewrite) {
    this.hostname = config.hostname;
    this.fullPath = config.path?.$case === 'replaceFullPath' ? config.path.value : undefined;
    this.prefixReplacement = config.path?.$case === 'replacePrefixMatch' ? config.path.value : undefined;
  }

  /** The new path (without query) for a request whose route matched `prefix` (see router). */
  rewritePath(path: string, prefix: string): string {
    if (this.fullPath !== undefined) return this.fullPath;
    if (this.prefixReplacement !== undefined) return replacePrefix(path, prefix, this.prefixReplacement);
    return path;
  }
}

/**
 * "/api/x" with prefix "/api" and replacement "/v1" -> "/v1/x"; replacement "/" -> "/x", not
 * "//x". `prefix` has no trailing slash ("" for "/").
 */
export function replacePrefix(path: string, prefix: string, replacement: string): string {
  const rest = path.slice(prefix.length);
  if (replacement.endsWith('/') && rest.startsWith('/')) return replacement + rest.slice(1);
  const out = replacement + rest;
  return out === '' ? '/' : out.startsWith('/') ? out : `/${out}`;
}
