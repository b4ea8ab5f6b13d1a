import { API_VERSION, formatFieldError, type KindInfo } from '@sluice/api';
import { CliError, type CliErrorCode, type StatusCause } from './errors.js';
import { asArray, asRecord, asString, isRecord, type ApiObject } from './object.js';
import { CLI_VERSION } from './version.js';

const API_PREFIX = '/apis/sluice/v1';

export interface ClientOptions {
  /** Base URL of the admin API, without a trailing slash. */
  server: string;
  /** Per-request timeout; 0 means none. For watches it bounds only the wait for headers. */
  timeoutMs: number;
  /** Aborts in-flight requests (SIGINT). */
  interrupted?: AbortSignal;
  fetch?: typeof fetch;
}

export interface ListResult {
  items: ApiObject[];
  resourceVersion: string | undefined;
}

export interface ApplyResultItem {
  kind: string;
  namespace: string | undefined;
  name: string;
  /** `created`, `configured` or `unchanged`. */
  action: string;
  object: ApiObject;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'ERROR' | 'BOOKMARK';

export interface WatchEvent {
  type: WatchEventType;
  object: ApiObject;
}

export interface ListOptions {
  /** Undefined lists across all namespaces (and is the only choice for cluster-scoped kinds). */
  namespace: string | undefined;
  labelSelector?: string | undefined;
}

export interface WatchOptions extends ListOptions {
  resourceVersion?: string | undefined;
  /** Ends the stream cleanly when aborted. */
  signal: AbortSignal;
}

export interface DryRunOption {
  dryRun?: boolean;
}

const REASON_CODES: Record<string, CliErrorCode> = {
  BadRequest: 'bad-request',
  NotFound: 'not-found',
  MethodNotAllowed: 'method-not-allowed',
  AlreadyExists: 'already-exists',
  Conflict: 'conflict',
  Gone: 'gone',
  RequestEntityTooLarge: 'too-large',
  Invalid: 'invalid',
  ServiceUnavailable: 'unavailable',
  InternalError: 'internal',
};

function codeForStatus(httpStatus: number, reason: string | undefined): CliErrorCode {
  if (reason !== undefined) {
    const byReason = REASON_CODES[reason];
    if (byReason !== undefined) return byReason;
  }
  switch (httpStatus) {
    case 400:
      return 'bad-request';
    case 404:
      return 'not-found';
    case 405:
      return 'method-not-allowed';
    case 409:
      return 'conflict';
    case 410:
      return 'gone';
    case 413:
      return 'too-large';
    case 422:
      return 'invalid';
    case 503:
      return 'unavailable';
    default:
      return httpStatus >= 500 ? 'internal' : 'bad-request';
  }
}

/** Turns a Kubernetes-style Status (from a response body or a watch ERROR event) into a CliError. */
export function statusError(body: unknown, httpStatus: number, fallback: string): CliError {
  const status = asRecord(body);
  const reason = asString(status['reason']);
  const code = typeof status['code'] === 'number' ? status['code'] : httpStatus;
  const message = asString(status['message']) ?? fallback;
  const causes: StatusCause[] = [];
  for (const c of asArray(asRecord(status['details'])['causes'])) {
    const cause = asRecord(c);
    const item: StatusCause = { field: asString(cause['field']) ?? '', message: asString(cause['message']) ?? '' };
    const causeReason = asString(cause['reason']);
    if (causeReason !== undefined) item.reason = causeReason;
    causes.push(item);
  }
  return new CliError(codeForStatus(code, reason), message, {
    causes,
    details: causes.map((c) => `  * ${formatFieldError(c)}`),
    httpStatus: code,
  });
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'no such host',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  UND_ERR_SOCKET: 'connection closed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  CERT_HAS_EXPIRED: 'TLS certificate has expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS certificate is self-signed',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS certificate does not match the host name',
};

/** The errno-style code buried in a fetch failure (`TypeError: fetch failed` -> cause -> code). */
export function networkErrorCode(error: unknown): string | undefined {
  let cur: unknown = error;
  for (let depth = 0; depth < 5 && cur !== undefined && cur !== null; depth++) {
    if (isRecord(cur) || cur instanceof Error) {
      const rec = cur as Record<string, unknown>;
      const code = asString(rec['code']);
      if (code !== undefined && code !== 'ERR_INVALID_ARG_TYPE') return code;
      const errors = rec['errors'];
      if (Array.isArray(errors) && errors.length > 0) {
        cur = errors[0];
        continue;
      }
      cur = rec['cause'];
    } else {
      return undefined;
    }
  }
  return undefined;
}

/** `fetch failed` says nothing; its cause (`bad port`, `invalid URL`) does. */
function innermostMessage(error: unknown): string {
  let message = error instanceof Error ? error.message : String(error);
  let cur: unknown = error;
  for (let depth = 0; depth < 5 && cur instanceof Error; depth++) {
    message = cur.message;
    cur = cur.cause;
  }
  return message;
}

function unreachable(server: string, error: unknown): CliError {
  const code = networkErrorCode(error);
  const reason = (code !== undefined ? NETWORK_REASONS[code] : undefined) ?? code ?? innermostMessage(error);
  return new CliError('unreachable', `cannot reach the Sluice controller at ${server}: ${reason} (is it running? set --server or SLUICE_SERVER)`, {
    cause: error,
  });
}

function describeTimeout(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

/** A thin client of the admin REST API (docs/admin-api.md). Every failure is a CliError. */
export class SluiceClient {
  readonly server: string;
  private readonly timeoutMs: number;
  private readonly interrupted: AbortSignal | undefined;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions) {
    this.server = options.server;
    this.timeoutMs = options.timeoutMs;
    this.interrupted = options.interrupted;
    this.fetchImpl = options.fetch ?? fetch;
  }

  collectionPath(info: KindInfo, namespace: string | undefined): string {
    return info.namespaced && namespace !== undefined
      ? `${API_PREFIX}/namespaces/${encodeURIComponent(namespace)}/${info.plural}`
      : `${API_PREFIX}/${info.plural}`;
  }

  objectPath(info: KindInfo, namespace: string | undefined, name: string): string {
    return `${this.collectionPath(info, info.namespaced ? namespace : undefined)}/${encodeURIComponent(name)}`;
  }

  async list(info: KindInfo, options: ListOptions): Promise<ListResult> {
    const path = this.collectionPath(info, options.namespace) + query({ labelSelector: options.labelSelector });
    const body = asRecord(await this.request('GET', path));
    const items = asArray(body['items']).filter(isRecord);
    return { items, resourceVersion: asString(asRecord(body['metadata'])['resourceVersion']) };
  }

  async get(info: KindInfo, namespace: string | undefined, name: string): Promise<ApiObject> {
    return this.expectObject(await this.request('GET', this.objectPath(info, namespace, name)));
  }

  /** GET that answers undefined for 404 NotFound instead of throwing. */
  async getIfExists(info: KindInfo, namespace: string | undefined, name: string): Promise<ApiObject | undefined> {
    try {
      return await this.get(info, namespace, name);
    } catch (error: unknown) {
      if (error instanceof CliError && error.code === 'not-found') return undefined;
      throw error;
    }
  }

  async replace(info: KindInfo, namespace: string | undefined, name: string, object: ApiObject, options: DryRunOption = {}): Promise<ApiObject> {
    const path = this.objectPath(info, namespace, name) + query({ dryRun: options.dryRun === true ? 'All' : undefined });
    return this.expectObject(await this.request('PUT', path, object));
  }

  async delete(info: KindInfo, namespace: string | undefined, name: string, options: DryRunOption = {}): Promise<ApiObject> {
    const path = this.objectPath(info, namespace, name) + query({ dryRun: options.dryRun === true ? 'All' : undefined });
    return this.expectObject(await this.request('DELETE', path));
  }

  /** `POST /apis/sluice/v1/apply`: all objects in one transaction, all or nothing. */
  async apply(items: ApiObject[], options: DryRunOption = {}): Promise<ApplyResultItem[]> {
    const path = `${API_PREFIX}/apply` + query({ dryRun: options.dryRun === true ? 'All' : undefined });
    const body = asRecord(await this.request('POST', path, { apiVersion: API_VERSION, kind: 'List', items }));
    const results = asArray(body['items']);
    if (results.length !== items.length) {
      throw new CliError('bad-response', `the controller answered the apply of ${items.length} object(s) with ${results.length} result(s)`);
    }
    return results.map((r) => {
      const rec = asRecord(r);
      return {
        kind: asString(rec['kind']) ?? '',
        namespace: asString(rec['namespace']),
        name: asString(rec['name']) ?? '',
        action: asString(rec['action']) ?? 'configured',
        object: asRecord(rec['object']),
      };
    });
  }

  async version(): Promise<Record<string, unknown>> {
    return asRecord(await this.request('GET', '/version'));
  }

  async openapi(): Promise<Record<string, unknown>> {
    return asRecord(await this.request('GET', '/openapi/v3'));
  }

  /**
   * `?watch=true`: yields events as the server streams them (NDJSON). Ends without error
   * when `signal` aborts or the server closes the stream.
   */
  async *watch(info: KindInfo, options: WatchOptions): AsyncGenerator<WatchEvent> {
    const path =
      this.collectionPath(info, options.namespace) +
      query({ watch: 'true', labelSelector: options.labelSelector, resourceVersion: options.resourceVersion });
    const headers = new AbortController();
    const timer = this.timeoutMs > 0 ? setTimeout(() => headers.abort(new DOMException('timeout', 'TimeoutError')), this.timeoutMs) : undefined;
    const signal = AbortSignal.any([options.signal, headers.signal]);
    let response: Response;
    try {
      response = await this.fetchImpl(this.server + path, { method: 'GET', headers: this.headers(false), signal });
    } catch (error: unknown) {
      if (options.signal.aborted) return;
      throw this.fetchFailure(error);
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) throw await this.responseError(response);
    if (response.body === null) return;
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of response.body) {
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line === '') continue;
          yield parseWatchLine(line);
        }
      }
    } catch (error: unknown) {
      if (options.signal.aborted) return;
      if (error instanceof CliError) throw error;
      throw new CliError('unreachable', `the watch stream from ${this.server} broke: ${networkErrorCode(error) ?? (error instanceof Error ? error.message : String(error))}`, {
        cause: error,
      });
    }
    const rest = buffered.trim();
    if (rest !== '') yield parseWatchLine(rest);
  }

  private headers(withBody: boolean): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', 'user-agent': `sluicectl/${CLI_VERSION}` };
    if (withBody) h['content-type'] = 'application/json';
    return h;
  }

  /** One request/response with the timeout covering the whole exchange, body included. */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const signals: AbortSignal[] = [];
    if (this.timeoutMs > 0) signals.push(AbortSignal.timeout(this.timeoutMs));
    if (this.interrupted !== undefined) signals.push(this.interrupted);
    const init: RequestInit = { method, headers: this.headers(body !== undefined) };
    if (signals.length > 0) init.signal = AbortSignal.any(signals);
    if (body !== undefined) init.body = JSON.stringify(body);
    try {
      const response = await this.fetchImpl(this.server + path, init);
      if (!response.ok) throw await this.responseError(response);
      const text = await response.text();
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new CliError('bad-response', `the controller at ${this.server} answered ${method} ${path} with something that is not JSON: ${truncate(text)}`);
      }
    } catch (error: unknown) {
      if (error instanceof CliError) throw error;
      throw this.fetchFailure(error);
    }
  }

  private fetchFailure(error: unknown): CliError {
    if (error instanceof Error && error.name === 'TimeoutError') {
      return new CliError('timeout', `the request to ${this.server} timed out after ${describeTimeout(this.timeoutMs)} (raise it with --request-timeout)`, {
        cause: error,
      });
    }
    if (this.interrupted?.aborted === true || (error instanceof Error && error.name === 'AbortError')) {
      return new CliError('interrupted', 'interrupted', { cause: error });
    }
    return unreachable(this.server, error);
  }

  private async responseError(response: Response): Promise<CliError> {
    let text = '';
    try {
      text = await response.text();
    } catch {
      // The status line alone still says what happened.
    }
    let body: unknown;
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      body = undefined;
    }
    const fallback = `the controller answered ${response.status} ${response.statusText}${text.trim() === '' ? '' : `: ${truncate(text)}`}`;
    if (isRecord(body) && body['kind'] === 'Status') return statusError(body, response.status, fallback);
    return statusError({ message: fallback }, response.status, fallback);
  }

  private expectObject(body: unknown): ApiObject {
    if (!isRecord(body)) throw new CliError('bad-response', `the controller at ${this.server} answered with a non-object`);
    return body;
  }
}

function parseWatchLine(line: string): WatchEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new CliError('bad-response', `malformed watch event: ${truncate(line)}`);
  }
  const rec = asRecord(parsed);
  const type = asString(rec['type']);
  if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED' && type !== 'ERROR' && type !== 'BOOKMARK') {
    throw new CliError('bad-response', `watch event of unknown type: ${truncate(line)}`);
  }
  return { type, object: asRecord(rec['object']) };
}

function truncate(text: string, max = 300): string {
  const t = text.trim();
  return t.length > max ? `${t.slice(0, max)}...` : t;
}
