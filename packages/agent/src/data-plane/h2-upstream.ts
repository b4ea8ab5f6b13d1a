import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type SecureClientSessionOptions } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

// HTTP/2 to an endpoint (Cluster.http2: gRPC backends), behind the part of undici's Pool the
// request path uses (dispatch with the DispatchHandler callbacks, stats.free, close, destroy).
// Why not undici's own HTTP/2: as of 7.30 its client completes a response on the stream's
// 'end', before Node emits 'trailers', so gRPC's status (grpc-status in the trailers) is
// lost. One session per endpoint carries every request as a stream; it is opened on first
// use and again after it closes (GOAWAY, idle timeout, error).

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

export interface Http2PoolOptions {
  /** 0 = 10 s (undici's default). */
  readonly connectTimeoutMs: number;
  /** A session with no stream for this long is closed. */
  readonly idleTimeoutMs: number;
  /** TLS (h2 by ALPN); undefined = h2c with prior knowledge. */
  readonly tls?: { readonly ca: string | undefined; readonly rejectUnauthorized: boolean; readonly servername: string | undefined } | undefined;
}

/** The undici Pool surface the request path uses, over one node:http2 session. */
export class Http2Pool {
  private session: ClientHttp2Session | undefined;
  private connected = false;
  private closing: Promise<void> | undefined;
  destroyed = false;

  constructor(
    private readonly origin: string,
    private readonly options: Http2PoolOptions,
  ) {}

  /** Like undici's: `free` = 0 while a request would wait for the connection; one connection at most. */
  get stats(): { free: number; connected: number } {
    const connected = this.connected ? 1 : 0;
    return { free: connected, connected };
  }

  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const exchange = new Http2Exchange(handler);
    if (this.closing !== undefined || this.destroyed) {
      exchange.fail(Object.assign(new Error('the HTTP/2 pool is closed'), { code: 'UND_ERR_CLOSED' }));
      return true;
    }
    if (opts.upgrade) {
      exchange.fail(new Error('upgrade requests are not supported to an HTTP/2 upstream'));
      return true;
    }
    const session = this.open();
    const headers: OutgoingHttpHeaders = { ':method': opts.method, ':path': opts.path };
    const list = opts.headers;
    if (Array.isArray(list)) {
      for (let i = 0; i < list.length; i += 2) {
        const name = String(list[i]).toLowerCase();
        const value = list[i + 1] as string;
        if (name === 'host') headers[':authority'] = value;
        else if (!HOP_BY_HOP.has(name)) {
          const prev = headers[name];
          headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
        }
      }
    }
    const body = opts.body as Readable | Buffer | string | null | undefined;
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: body === null || body === undefined });
    } catch (err) {
      exchange.fail(err instanceof Error ? err : new Error(String(err)));
      return true;
    }
    // The body flows once the stream is open on a connected session: a try that cannot
    // connect leaves it unread, so another endpoint may still be tried with it.
    exchange.start(stream, () => (this.connected ? undefined : this.connectError), () => {
      if (body === null || body === undefined) return;
      if (typeof body === 'string' || Buffer.isBuffer(body)) stream.end(body);
      else {
        body.on('error', (err) => stream.destroy(err));
        body.pipe(stream);
      }
    });
    return true;
  }

  private connectError: Error | undefined;

  private open(): ClientHttp2Session {
    if (this.session !== undefined && !this.session.closed && !this.session.destroyed) return this.session;
    const tls = this.options.tls;
    const options: SecureClientSessionOptions = tls === undefined ? {} : { ca: tls.ca, rejectUnauthorized: tls.rejectUnauthorized, servername: tls.servername, ALPNProtocols: ['h2'] };
    const session = connect(this.origin, options);
    this.session = session;
    this.connected = false;
    this.connectError = undefined;
    const timer = setTimeout(() => {
      const err = Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' });
      this.connectError = err;
      session.destroy(err);
    }, this.options.connectTimeoutMs || 10_000);
    timer.unref();
    session.once('connect', () => {
      clearTimeout(timer);
      this.connected = true;
    });
    session.on('error', (err: Error) => {
      clearTimeout(timer);
      if (!this.connected) this.connectError = err;
    });
    session.once('close', () => {
      clearTimeout(timer);
      if (this.session === session) {
        this.session = undefined;
        this.connected = false;
      }
    });
    session.once('goaway', () => {
      if (this.session === session) this.session = undefined;
    });
    session.setTimeout(this.options.idleTimeoutMs, () => session.close());
    // An idle session must not keep the process alive; streams ref it while they run.
    session.unref();
    return session;
  }

  /** Finishes open streams, then closes the session. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const session = this.session;
      this.session = undefined;
      if (session === undefined || session.closed) resolve();
      else session.close(() => resolve());
    });
    return this.closing;
  }

  destroy(): Promise<void> {
    this.destroyed = true;
    this.session?.destroy();
    this.session = undefined;
    return Promise.resolve();
  }
}

/** One request's stream, driving the handler as undici would. */
class Http2Exchange implements Dispatcher.DispatchController {
  private stream: ClientHttp2Stream | undefined;
  private done = false;
  private responded = false;
  /** The stream was open on a connected session ('ready'): the request may have reached the endpoint. */
  private opened = false;
  private failing = false;
  private trailers: IncomingHttpHeaders = {};
  aborted = false;
  paused = false;
  reason: Error | null = null;

  constructor(private readonly handler: Dispatcher.DispatchHandler) {}

  start(stream: ClientHttp2Stream, connectError: () => Error | undefined, sendBody: () => void): void {
    this.stream = stream;
    // 'ready': the session is connected and the stream has its id; the request is on its way.
    const ready = (): void => {
      this.opened = true;
      if (this.done) return;
      this.handler.onRequestStart?.(this, {});
      if (!this.done) sendBody();
    };
    // On a connected session the stream opens within request() ('ready' already emitted).
    if (stream.pending) stream.once('ready', ready);
    else queueMicrotask(ready);
    stream.on('response', (headers: IncomingHttpHeaders) => {
      const status = Number(headers[':status']);
      if (status < 200) return;
      this.responded = true;
      const out: IncomingHttpHeaders = {};
      for (const name in headers) if (name.charCodeAt(0) !== 58 /* : */) out[name] = headers[name];
      this.handler.onResponseStart?.(this, status, out, '');
    });
    stream.on('data', (chunk: Buffer) => {
      if (!this.done) this.handler.onResponseData?.(this, chunk);
    });
    stream.on('trailers', (trailers: IncomingHttpHeaders) => {
      this.trailers = trailers;
    });
    stream.on('error', (err: Error) => {
      if (this.opened) this.fail(err);
      else this.failUnsent(connectError);
    });
    // 'close' comes after both 'end' and 'trailers'.
    stream.on('close', () => {
      if (this.done) return;
      if (this.responded && stream.rstCode === constants.NGHTTP2_NO_ERROR) {
        this.done = true;
        this.handler.onResponseEnd?.(this, this.trailers);
      } else if (!this.opened) this.failUnsent(connectError);
      else this.fail(Object.assign(new Error(`HTTP/2 stream closed (code ${stream.rstCode ?? 'unknown'})`), { code: 'UND_ERR_SOCKET' }));
    });
  }

  /**
   * The stream failed before it was sent: its session could not connect. Node cancels the
   * stream before it emits the session's error, so that error (ECONNREFUSED, a connect
   * timeout...) is read a turn later; the try then counts as a connect failure, which may be
   * retried elsewhere whatever the method (the body was not read).
   */
  private failUnsent(connectError: () => Error | undefined): void {
    if (this.done || this.failing) return;
    this.failing = true;
    setImmediate(() => this.fail(connectError() ?? Object.assign(new Error('HTTP/2 session closed before the request was sent'), { code: 'UND_ERR_CLOSED' })));
  }

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.stream?.close(constants.NGHTTP2_CANCEL);
    queueMicrotask(() => this.handler.onResponseError?.(this, err));
  }

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.done = true;
    this.stream?.close(constants.NGHTTP2_CANCEL);
  }

  pause(): void {
    this.paused = true;
    this.stream?.pause();
  }

  resume(): void {
    this.paused = false;
    this.stream?.resume();
  }
}
