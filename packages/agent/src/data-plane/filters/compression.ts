import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import * as zlib from 'node:zlib';
import type { Compression } from '@sluice/proto';

/** Where a response body goes: the client's response, or a stream in front of it. */
export interface BodyWriter {
  /** false: wait for 'drain' before writing more. */
  write(chunk: Buffer): boolean;
  end(): void;
  once(event: 'drain', listener: () => void): unknown;
}

/** Response headers as undici hands them over (lower-case names). */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

export const DEFAULT_ALGORITHMS = ['br', 'gzip'] as const;
export const DEFAULT_MIN_BYTES = 1024;
export const DEFAULT_CONTENT_TYPES = ['text/*', 'application/json', 'application/javascript', 'image/svg+xml'] as const;
/** Every algorithm the API offers; zstd only where this Node has it (22.15+). */
export const KNOWN_ALGORITHMS: ReadonlySet<string> = new Set(['br', 'gzip', 'deflate', 'zstd']);

type Algorithm = 'br' | 'gzip' | 'deflate' | 'zstd';

const zstdCompress = (zlib as { createZstdCompress?: () => zlib.Gzip }).createZstdCompress;

function encoder(algorithm: Algorithm): NodeJS.ReadWriteStream & { destroy(): void } {
  switch (algorithm) {
    case 'br':
      // Quality 11 (the default) costs ~20x the CPU of 4 for a few percent; 4 is what CDNs use for dynamic responses.
      return zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } });
    case 'gzip':
      return zlib.createGzip();
    case 'deflate':
      return zlib.createDeflate();
    case 'zstd':
      return (zstdCompress as () => zlib.Gzip)();
  }
}

/** Distinct Accept-Encoding values remembered per route: clients send a handful of them. */
const NEGOTIATION_CACHE_SIZE = 64;

/**
 * Compression: gzip, br, deflate (zstd where Node has it) through node:zlib streams,
 * negotiated from Accept-Encoding. Decided once the backend's (or the cache's) response
 * headers are known.
 */
export class CompiledCompression {
  /** Offered encodings, most preferred first. */
  private readonly algorithms: readonly Algorithm[];
  private readonly minBytes: number;
  private readonly exactTypes: ReadonlySet<string>;
  /** "text/*" -> "text/". */
  private readonly typePrefixes: readonly string[];
  private readonly negotiated = new Map<string, Algorithm | undefined>();

  constructor(config: Compression) {
    const offered = (config.algorithms.length > 0 ? config.algorithms : DEFAULT_ALGORITHMS).map((a) => a.toLowerCase());
    this.algorithms = offered.filter((a): a is Algorithm => KNOWN_ALGORITHMS.has(a) && (a !== 'zstd' || zstdCompress !== undefined));
    // proto3 cannot tell "unset" from 0; the API's default is 1024, and 1 compresses everything.
    this.minBytes = config.minBytes || DEFAULT_MIN_BYTES;
    const types = (config.contentTypes.length > 0 ? config.contentTypes : DEFAULT_CONTENT_TYPES).map((t) => t.trim().toLowerCase());
    this.exactTypes = new Set(types.filter((t) => !t.endsWith('/*')));
    this.typePrefixes = types.filter((t) => t.endsWith('/*')).map((t) => t.slice(0, -1));
  }

  /**
   * Decides for one response and, when it compresses, rewrites `headers` (Content-Encoding,
   * no Content-Length, Vary, weak ETag) and returns the stream the body must be written to
   * (already piped into `res`). undefined: the body goes to `res` as it is.
   */
  start(method: string, requestHeaders: IncomingHttpHeaders, status: number, headers: ResponseHeaders | OutgoingHttpHeaders, res: ServerResponse): BodyWriter | undefined {
    if (method === 'HEAD' || status < 200 || status === 204 || status === 206 || status === 304) return undefined;
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && String(encoding).trim().toLowerCase() !== 'identity') return undefined;
    const cacheControl = headers['cache-control'];
    if (cacheControl !== undefined && /(?:^|[\s,])no-transform(?:$|[\s,=])/i.test(String(cacheControl))) return undefined;
    if (!this.compressible(headers['content-type'])) return undefined;
    const length = headers['content-length'];
    if (length !== undefined && Number(length) < this.minBytes) return undefined;
    // From here the answer depends on Accept-Encoding, whichever it is.
    addVary(headers, 'Accept-Encoding');
    const algorithm = this.negotiate(requestHeaders['accept-encoding']);
    if (algorithm === undefined) return undefined;
    delete headers['content-length'];
    delete headers['accept-ranges'];
    headers['content-encoding'] = algorithm;
    const etag = headers.etag;
    if (typeof etag === 'string' && etag.startsWith('"')) headers.etag = `W/${etag}`;
    const stream = encoder(algorithm);
    stream.pipe(res);
    stream.once('error', () => res.destroy());
    res.once('close', () => stream.destroy());
    return stream;
  }

  private compressible(contentType: unknown): boolean {
    if (typeof contentType !== 'string') return false;
    const semi = contentType.indexOf(';');
    const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
    // Events must reach the client as they are written; a compressor holds them back.
    if (type === 'text/event-stream') return false;
    if (this.exactTypes.has(type)) return true;
    for (const prefix of this.typePrefixes) if (type.startsWith(prefix)) return true;
    return false;
  }

  /** The offered algorithm the client rates highest (q > 0); ties go to the configured order. */
  negotiate(acceptEncoding: string | undefined): Algorithm | undefined {
    if (acceptEncoding === undefined || acceptEncoding === '') return undefined;
    if (this.negotiated.has(acceptEncoding)) return this.negotiated.get(acceptEncoding);
    const q = parseAcceptEncoding(acceptEncoding);
    const star = q.get('*');
    let best: Algorithm | undefined;
    let bestQ = 0;
    for (const a of this.algorithms) {
      const value = q.get(a) ?? (a === 'gzip' ? q.get('x-gzip') : undefined) ?? star ?? 0;
      if (value > bestQ) {
        best = a;
        bestQ = value;
      }
    }
    if (this.negotiated.size >= NEGOTIATION_CACHE_SIZE) this.negotiated.clear();
    this.negotiated.set(acceptEncoding, best);
    return best;
  }
}

/** "gzip;q=0.8, br, *;q=0" -> {gzip: 0.8, br: 1, *: 0}; a malformed q counts as 0. */
export function parseAcceptEncoding(header: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of header.split(',')) {
    const [coding, ...params] = part.split(';');
    const name = (coding ?? '').trim().toLowerCase();
    if (name === '') continue;
    let q = 1;
    for (const p of params) {
      const [key, value] = p.split('=');
      if (key?.trim().toLowerCase() === 'q') {
        const n = Number(value?.trim());
        q = value !== undefined && /^\s*(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)\s*$/.test(value) && Number.isFinite(n) ? n : 0;
      }
    }
    // The first mention of a coding counts.
    if (!out.has(name)) out.set(name, q);
  }
  return out;
}

/** Adds `name` to Vary unless it (or "*") is there already. */
export function addVary(headers: ResponseHeaders | OutgoingHttpHeaders, name: string): void {
  const vary = headers.vary;
  if (vary === undefined) {
    headers.vary = name;
    return;
  }
  const text = Array.isArray(vary) ? vary.join(', ') : String(vary);
  const lower = name.toLowerCase();
  if (text.split(',').some((v) => { const t = v.trim().toLowerCase(); return t === lower || t === '*'; })) return;
  headers.vary = `${text}, ${name}`;
}
