// Request paths are normalized before route matching, so that "/api/../admin" is matched
// (and forwarded) as "/admin" and cannot slip past a PathPrefix "/api" route, as Envoy's
// `normalize_path` + `merge_slashes` and NGINX do:
//   - percent-encoded unreserved characters (RFC 3986 §2.3) are decoded, "%2e" included, so
//     "/%2e%2e/" is a dot segment; every other escape stays encoded (hex upper-cased), in
//     particular "%2F", which never becomes a separator;
//   - repeated slashes are merged;
//   - "." and ".." segments are removed (RFC 3986 §5.2.4).
// A path that climbs above the root, has a malformed escape or a NUL is refused (undefined).

const PERCENT = 37; // %
const SLASH = 47; // /
const DOT = 46; // .

/**
 * The normalized form of `path` (no query), or undefined when it must be refused. Returns
 * `path` itself when there is nothing to do, the common case, checked in one scan.
 */
export function normalizePath(path: string): string | undefined {
  if (isNormal(path)) return path;
  const decoded = decodeUnreserved(path);
  if (decoded === undefined) return undefined;
  return removeDotSegments(decoded);
}

/** No escape, no NUL, no "//", no segment starting with "." (conservative: "/.well-known" goes the slow way). */
function isNormal(path: string): boolean {
  if (path.charCodeAt(0) !== SLASH) return false;
  let previous = SLASH;
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT || c === 0 || (previous === SLASH && (c === SLASH || c === DOT))) return false;
    previous = c;
  }
  return true;
}

function decodeUnreserved(path: string): string | undefined {
  if (path.indexOf('%') < 0) return path.indexOf('\0') < 0 ? path : undefined;
  let out = '';
  let from = 0;
  for (let i = path.indexOf('%'); i >= 0; i = path.indexOf('%', i)) {
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return undefined;
    const code = hi * 16 + lo;
    if (code === 0) return undefined;
    out += path.slice(from, i) + (isUnreserved(code) ? String.fromCharCode(code) : `%${path.slice(i + 1, i + 3).toUpperCase()}`);
    i += 3;
    from = i;
  }
  out += path.slice(from);
  return out.indexOf('\0') < 0 ? out : undefined;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 65 && c <= 70) return c - 55; // A-F
  if (c >= 97 && c <= 102) return c - 87; // a-f
  return -1;
}

/** ALPHA / DIGIT / "-" / "." / "_" / "~" */
function isUnreserved(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;
}

/** Merges slashes and resolves "." and ".."; undefined when ".." climbs above the root. */
function removeDotSegments(path: string): string | undefined {
  const segments = path.split('/');
  const out: string[] = [];
  // segments[0] is what precedes the first "/": "" for an origin-form path.
  if (segments[0] !== '') return undefined;
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(segment);
  }
  // "/a/b/", "/a/b/." and "/a/b/c/.." all end in a directory: keep the trailing slash.
  const last = segments[segments.length - 1];
  const directory = last === '' || last === '.' || last === '..';
  return out.length === 0 ? '/' : `/${out.join('/')}${directory ? '/' : ''}`;
}
