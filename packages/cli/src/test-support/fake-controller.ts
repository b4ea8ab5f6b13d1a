// An in-memory stand-in for the controller's admin API (docs/admin-api.md), for in-process
// tests of commands. It uses the real @sluice/api validation, so error paths match the
// controller's. Cross-process tests in test/cli use the real `sluice controller`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { API_VERSION, KINDS, matchLabels, openApiDocument, parseLabelSelector, validateResource, type KindInfo } from '@sluice/api';

type Obj = Record<string, unknown>;

interface Watcher {
  info: KindInfo;
  namespace: string | undefined;
  res: ServerResponse;
}

function meta(o: Obj): Obj {
  return (o['metadata'] ?? {}) as Obj;
}

function status(res: ServerResponse, code: number, reason: string, message: string, causes?: { field: string; message: string }[]): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Status',
      status: 'Failure',
      code,
      reason,
      message,
      ...(causes ? { details: { causes: causes.map((c) => ({ ...c, reason: 'FieldValueInvalid' })) } } : {}),
    }),
  );
}

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export class FakeController implements AsyncDisposable {
  readonly objects = new Map<string, Obj>();
  revision = 1;
  /** Set to make every request answer 503, as when the store is down. */
  storeDown = false;
  private watchers: Watcher[] = [];
  private server: Server;
  url = '';

  private constructor() {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((error: unknown) => status(res, 500, 'InternalError', String(error)));
    });
  }

  static async start(): Promise<FakeController> {
    const fake = new FakeController();
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  key(info: KindInfo, ns: string | undefined, name: string): string {
    return `${info.kind}/${info.namespaced ? (ns ?? 'default') : ''}/${name}`;
  }

  /** Stores an object directly (as another client would), notifying watchers. */
  put(obj: Obj): Obj {
    const info = KINDS.find((k) => k.kind === obj['kind']);
    if (!info) throw new Error('unknown kind');
    const m = meta(obj);
    const key = this.key(info, m['namespace'] as string | undefined, m['name'] as string);
    const prev = this.objects.get(key);
    this.revision++;
    const pm = prev ? meta(prev) : {};
    const stored: Obj = {
      ...obj,
      metadata: {
        ...m,
        uid: pm['uid'] ?? `uid-${this.revision}`,
        creationTimestamp: pm['creationTimestamp'] ?? new Date().toISOString(),
        generation: prev ? (pm['generation'] as number) + (JSON.stringify(prev['spec']) === JSON.stringify(obj['spec']) ? 0 : 1) : 1,
        resourceVersion: String(this.revision),
      },
    };
    if (prev?.['status'] !== undefined) stored['status'] = prev['status'];
    else delete stored['status'];
    this.objects.set(key, stored);
    this.notify(info, prev ? 'MODIFIED' : 'ADDED', stored);
    return stored;
  }

  private notify(info: KindInfo, type: string, obj: Obj): void {
    for (const w of this.watchers) {
      if (w.info.kind !== info.kind) continue;
      if (w.namespace !== undefined && meta(obj)['namespace'] !== w.namespace) continue;
      w.res.write(`${JSON.stringify({ type, object: obj })}\n`);
    }
  }

  private async body(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') as unknown;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (this.storeDown) return status(res, 503, 'ServiceUnavailable', 'the store is not answering: embedded at /tmp/x.db');
    if (url.pathname === '/version') return json(res, 200, { version: '0.1.0-fake', store: 'embedded', apiVersion: API_VERSION });
    if (url.pathname === '/openapi/v3') return json(res, 200, openApiDocument());
    const dryRun = url.searchParams.get('dryRun') === 'All';
    if (url.pathname === '/apis/sluice/v1/apply' && req.method === 'POST') {
      const body = (await this.body(req)) as { items?: unknown[] };
      const causes: { field: string; message: string }[] = [];
      const valid: Obj[] = [];
      for (const [i, item] of (body.items ?? []).entries()) {
        const r = validateResource(item);
        if (r.ok) valid.push(r.value);
        else causes.push(...r.errors.map((e) => ({ field: `items[${i}]${e.field === '' ? '' : `.${e.field}`}`, message: e.message })));
      }
      if (causes.length > 0) return status(res, 422, 'Invalid', `List is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`, causes);
      const items = valid.map((obj) => {
        const info = KINDS.find((k) => k.kind === obj['kind'])!;
        const m = meta(obj);
        const key = this.key(info, m['namespace'] as string, m['name'] as string);
        const prev = this.objects.get(key);
        const same =
          prev !== undefined &&
          JSON.stringify(prev['spec']) === JSON.stringify(obj['spec']) &&
          JSON.stringify(meta(prev)['labels'] ?? {}) === JSON.stringify(m['labels'] ?? {}) &&
          JSON.stringify(meta(prev)['annotations'] ?? {}) === JSON.stringify(m['annotations'] ?? {}) &&
          JSON.stringify(prev['data']) === JSON.stringify(obj['data']);
        const action = prev === undefined ? 'created' : same ? 'unchanged' : 'configured';
        const object = dryRun || same ? { ...obj, metadata: { ...(prev ? meta(prev) : {}), ...m } } : this.put(obj);
        return { kind: info.kind, namespace: m['namespace'], name: m['name'], action, object: same && prev ? prev : object };
      });
      return json(res, 200, { apiVersion: API_VERSION, kind: 'ApplyResult', items });
    }
    const m = /^\/apis\/sluice\/v1\/(?:namespaces\/([^/]+)\/)?([a-z]+)(?:\/([^/]+))?$/.exec(url.pathname);
    const info = m ? KINDS.find((k) => k.plural === m[2]) : undefined;
    if (!m || !info) return status(res, 404, 'NotFound', `the server could not find the requested resource`);
    const ns = m[1];
    const name = m[3] === undefined ? undefined : decodeURIComponent(m[3]);
    if (name === undefined && req.method === 'GET') {
      const selector = url.searchParams.get('labelSelector');
      const parsed = selector ? parseLabelSelector(selector) : undefined;
      if (parsed && !parsed.ok) return status(res, 400, 'BadRequest', parsed.error);
      const items = [...this.objects.values()]
        .filter((o) => o['kind'] === info.kind && (ns === undefined || meta(o)['namespace'] === ns))
        .filter((o) => !parsed?.ok || matchLabels(parsed.selector, meta(o)['labels'] as Record<string, string> | undefined));
      if (url.searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        if (!url.searchParams.has('resourceVersion')) for (const o of items) res.write(`${JSON.stringify({ type: 'ADDED', object: o })}\n`);
        const w: Watcher = { info, namespace: ns, res };
        this.watchers.push(w);
        req.on('close', () => (this.watchers = this.watchers.filter((x) => x !== w)));
        return;
      }
      return json(res, 200, { apiVersion: API_VERSION, kind: info.listKind, metadata: { resourceVersion: String(this.revision) }, items });
    }
    if (name === undefined) return status(res, 405, 'MethodNotAllowed', 'not supported by the fake');
    const key = this.key(info, ns, name);
    const existing = this.objects.get(key);
    switch (req.method ?? '') {
      case 'GET':
        return existing ? json(res, 200, existing) : status(res, 404, 'NotFound', `${info.plural} "${name}" not found`);
      case 'DELETE':
        if (!existing) return status(res, 404, 'NotFound', `${info.plural} "${name}" not found`);
        if (!dryRun) {
          this.objects.delete(key);
          this.revision++;
          this.notify(info, 'DELETED', existing);
        }
        return json(res, 200, existing);
      case 'PUT': {
        const body = (await this.body(req)) as Obj;
        if (!existing) return status(res, 404, 'NotFound', `${info.plural} "${name}" not found`);
        const rv = meta(body)['resourceVersion'];
        if (rv !== undefined && rv !== meta(existing)['resourceVersion']) {
          return status(res, 409, 'Conflict', `Operation cannot be fulfilled on ${info.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
        }
        const r = validateResource(body);
        if (!r.ok) return status(res, 422, 'Invalid', `${info.kind}.sluice/v1 "${name}" is invalid: ${r.errors.map((e) => `${e.field}: ${e.message}`).join(', ')}`, r.errors);
        return json(res, 200, dryRun ? r.value : this.put(r.value));
      }
      default:
        return status(res, 405, 'MethodNotAllowed', 'not supported by the fake');
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const w of this.watchers) w.res.end();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
