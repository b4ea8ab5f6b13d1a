import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import express, { type NextFunction, type Request, type Response } from 'express';
import { API_VERSION, KINDS, kindInfo, openApiDocument, parseLabelSelector, type FieldError, type KindInfo, type LabelSelector } from '@sluice/api';
import { ControllerError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ResourceService } from '../resources/resource-service.js';
import { VERSION } from '../version.js';
import { registerPurge } from './purge.js';
import { carriesMarker, redact, rejectRedacted, restoreRedacted, secretTarget } from './redact.js';
import { toStatus } from './status.js';

/** Largest accepted request body: Kubernetes' limit, above etcd's default request size. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

const SECRET_KIND = kindInfo('Secret') as KindInfo;

const MERGE_PATCH_TYPES = ['application/merge-patch+json', 'application/json'];

export interface AdminServerOptions {
  resources: ResourceService;
  logger: Logger;
  /** This replica's id and whether it leads (GET /leader); absent: always the leader. */
  leadership?: () => { id: string; leader: boolean; leaderId: string };
  /** Prometheus exposition for GET /metrics (metrics/controller-metrics.ts); absent: 404. */
  metrics?: { readonly contentType: string; metrics(): Promise<string> };
}

/**
 * The admin REST API (docs/admin-api.md): Kubernetes paths, verbs, Status errors, watch as
 * newline-delimited JSON. It holds no state; every request goes to the ResourceService.
 */
export function createAdminApp({ resources, logger, leadership, metrics }: AdminServerOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(express.json({ limit: MAX_BODY_BYTES, type: () => true, strict: false }));

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });

  app.get('/readyz', async (_req, res) => {
    try {
      await resources.store.health();
      res.type('text/plain').send('ok');
    } catch (error) {
      res.status(503).type('text/plain').send(`not ready: ${error instanceof Error ? error.message : String(error)}`);
    }
  });

  if (metrics) {
    app.get('/metrics', async (_req, res) => {
      const body = await metrics.metrics();
      res.set('cache-control', 'no-store').type(metrics.contentType).send(body);
    });
  }

  app.get('/version', (_req, res) => {
    res.json({ version: VERSION, apiVersion: API_VERSION, store: resources.store.kind, node: process.version });
  });

  app.get('/leader', (_req, res) => {
    res.json(leadership?.() ?? { id: '', leader: true, leaderId: '' });
  });

  const openapi = openApiDocument();
  app.get(['/openapi/v3', '/openapi/v3/apis/sluice/v1'], (_req, res) => {
    res.json(openapi);
  });

  app.get(['/apis', '/apis/sluice', '/apis/sluice/v1'], (_req, res) => {
    res.json({
      apiVersion: 'v1',
      kind: 'APIResourceList',
      groupVersion: API_VERSION,
      resources: KINDS.map((k) => ({
        name: k.plural,
        singularName: k.singular,
        namespaced: k.namespaced,
        kind: k.kind,
        shortNames: k.shortNames,
        verbs: k.userWritable
          ? ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']
          : ['get', 'list', 'watch'],
      })),
    });
  });

  app.post('/apis/sluice/v1/apply', async (req, res) => {
    const body = req.body as unknown;
    const restored = await Promise.all(listItems(body).map((item, i) => restoreFromStore(item, secretTarget(item), `items[${i}].`)));
    rejectRedacted(restored.flatMap((r) => r.causes));
    const applied = await resources.apply(restored.map((r) => r.body), { dryRun: dryRun(req) });
    res.json({ apiVersion: API_VERSION, kind: 'ApplyResult', items: applied.map((item) => ({ ...item, object: redact(item.object) })) });
  });

  // Cluster-wide: lists across namespaces, and cluster-scoped kinds (agents).
  app.get('/apis/sluice/v1/:plural', async (req, res) => {
    const kind = kindFor(req.params.plural);
    await listOrWatch(req, res, kind, undefined);
  });
  app.get('/apis/sluice/v1/:plural/:name', async (req, res) => {
    const kind = clusterScoped(kindFor(req.params.plural));
    res.json(redact(await resources.get(kind, undefined, req.params.name)));
  });
  app.delete('/apis/sluice/v1/:plural/:name', async (req, res) => {
    const kind = clusterScoped(kindFor(req.params.plural));
    res.json(redact(await resources.delete(writable(kind), undefined, req.params.name, { dryRun: dryRun(req) })));
  });

  const ns = '/apis/sluice/v1/namespaces/:namespace/:plural';
  app.get(ns, async (req, res) => {
    await listOrWatch(req, res, namespaced(kindFor(req.params.plural)), req.params.namespace);
  });
  app.post(ns, async (req, res) => {
    const kind = namespaced(kindFor(req.params.plural));
    rejectRedacted(restoreRedacted(req.body, undefined).causes);
    res.status(201).json(redact(await resources.create(kind, req.params.namespace, req.body, { dryRun: dryRun(req) })));
  });
  app.get(`${ns}/:name`, async (req, res) => {
    const kind = namespaced(kindFor(req.params.plural));
    res.json(redact(await resources.get(kind, req.params.namespace, req.params.name)));
  });
  app.put(`${ns}/:name`, async (req, res) => {
    const kind = namespaced(kindFor(req.params.plural));
    const restored = await restoreFromStore(req.body, { namespace: req.params.namespace, name: req.params.name });
    rejectRedacted(restored.causes);
    res.json(redact(await resources.replace(kind, req.params.namespace, req.params.name, restored.body, { dryRun: dryRun(req) })));
  });
  app.patch(`${ns}/:name`, async (req, res) => {
    const kind = namespaced(kindFor(req.params.plural));
    const type = req.get('content-type')?.split(';')[0]?.trim() ?? 'application/json';
    if (!MERGE_PATCH_TYPES.includes(type)) {
      throw new ControllerError('unsupported-media-type', `PATCH supports JSON merge patch only (Content-Type: application/merge-patch+json), not ${type}`);
    }
    const restored = kind.kind === 'Secret' ? await restoreFromStore(req.body, { namespace: req.params.namespace, name: req.params.name }, '', true) : { body: req.body as unknown, causes: [] };
    rejectRedacted(restored.causes);
    res.json(redact(await resources.patch(kind, req.params.namespace, req.params.name, restored.body, { dryRun: dryRun(req) })));
  });
  app.delete(`${ns}/:name`, async (req, res) => {
    const kind = namespaced(kindFor(req.params.plural));
    res.json(redact(await resources.delete(writable(kind), req.params.namespace, req.params.name, { dryRun: dryRun(req) })));
  });
  registerPurge(app, resources);
  app.all(`${ns}/:name/status`, () => {
    throw new ControllerError('method-not-allowed', 'status is written only by the controller');
  });

  app.use(() => {
    throw new ControllerError('not-found', 'the server could not find the requested resource');
  });

  // Express 5 forwards rejected promises here; this is the only place errors become HTTP.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = toStatus(bodyParserError(error) ?? error);
    if (status.code >= 500) logger.warn('admin request failed', { method: req.method, path: req.path, message: status.message });
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(status.code).json(status);
  });

  /**
   * A Secret write's redaction markers replaced by the stored values (read here, outside the
   * write's compare-and-swap: a key rotated by another writer in between could be written
   * back; the marker only comes from editing what a read returned).
   */
  async function restoreFromStore(body: unknown, target: { namespace: string; name: string } | undefined, prefix = '', patch = false): Promise<{ body: unknown; causes: FieldError[] }> {
    if (!carriesMarker(body)) return { body, causes: [] };
    const stored = target === undefined ? undefined : await resources.get(SECRET_KIND, target.namespace, target.name).catch(() => undefined);
    return restoreRedacted(body, stored, prefix, patch);
  }

  async function listOrWatch(req: Request, res: Response, kind: KindInfo, namespace: string | undefined): Promise<void> {
    const selector = labelSelector(req);
    if (req.query.watch === 'true' || req.query.watch === '1') {
      await streamWatch(req, res, kind, namespace, selector);
      return;
    }
    const { items, revision } = await resources.list(kind, namespace, selector);
    res.json({ apiVersion: API_VERSION, kind: kind.listKind, metadata: { resourceVersion: String(revision) }, items: items.map(redact) });
  }

  async function streamWatch(
    req: Request,
    res: Response,
    kind: KindInfo,
    namespace: string | undefined,
    selector: LabelSelector | undefined,
  ): Promise<void> {
    const rv = req.query.resourceVersion;
    let resourceVersion: number | undefined;
    if (typeof rv === 'string' && rv !== '' && rv !== '0') {
      resourceVersion = Number(rv);
      if (!Number.isSafeInteger(resourceVersion) || resourceVersion < 0) {
        throw new ControllerError('bad-request', `resourceVersion must be a whole number, not "${rv}"`);
      }
    }
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    res.status(200).type('application/json').setHeader('cache-control', 'no-store');
    res.flushHeaders();
    try {
      for await (const event of resources.watch(kind, namespace, { resourceVersion, selector }, abort.signal)) {
        res.write(`${JSON.stringify({ ...event, object: redact(event.object) })}\n`);
      }
    } catch (error) {
      if (!abort.signal.aborted) res.write(`${JSON.stringify({ type: 'ERROR', object: toStatus(error) })}\n`);
    }
    res.end();
  }

  return app;
}

/** Starts the app on `host:port` (port 0 picks one); resolves with the server and its URL. */
export async function listenAdmin(
  app: express.Express,
  host: string,
  port: number,
  /** --admin-tls-cert/--admin-tls-key: serve HTTPS. */
  tls?: { cert: Buffer; key: Buffer },
): Promise<{ server: Server | HttpsServer; url: string }> {
  return new Promise((resolve, reject) => {
    const server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, app) : createServer(app);
    server.listen(port, host);
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      const shownHost = host.includes(':') ? `[${host}]` : host;
      resolve({ server, url: `${tls ? 'https' : 'http'}://${shownHost}:${bound}` });
    });
  });
}

function kindFor(plural: string | undefined): KindInfo {
  const kind = KINDS.find((k) => k.plural === plural);
  if (!kind) {
    throw new ControllerError('not-found', `the server doesn't have a resource type "${plural ?? ''}" (known: ${KINDS.map((k) => k.plural).join(', ')})`);
  }
  return kind;
}

function namespaced(kind: KindInfo): KindInfo {
  if (!kind.namespaced) throw new ControllerError('not-found', `${kind.plural} are cluster-scoped: use /apis/sluice/v1/${kind.plural}`);
  return kind;
}

function clusterScoped(kind: KindInfo): KindInfo {
  if (kind.namespaced) {
    throw new ControllerError('not-found', `${kind.plural} are namespaced: use /apis/sluice/v1/namespaces/{namespace}/${kind.plural}/{name}`);
  }
  return kind;
}

function writable(kind: KindInfo): KindInfo {
  if (!kind.userWritable) throw new ControllerError('method-not-allowed', `${kind.plural} are written by the controller and cannot be changed through the API`);
  return kind;
}

function dryRun(req: Request): boolean {
  const value = req.query.dryRun;
  if (value === undefined) return false;
  if (value === 'All') return true;
  throw new ControllerError('bad-request', `dryRun must be "All", not ${JSON.stringify(value)}`);
}

function labelSelector(req: Request): LabelSelector | undefined {
  const text = req.query.labelSelector;
  if (text === undefined || text === '') return undefined;
  if (typeof text !== 'string') throw new ControllerError('bad-request', 'labelSelector must be given once');
  const parsed = parseLabelSelector(text);
  if (!parsed.ok) throw new ControllerError('bad-request', `invalid labelSelector "${text}": ${parsed.error}`);
  return parsed.selector;
}

/** The items of an apply body: a `List`, or a bare array. */
function listItems(body: unknown): unknown[] {
  if (Array.isArray(body)) return body;
  if (typeof body === 'object' && body !== null && Array.isArray((body as { items?: unknown }).items)) {
    return (body as { items: unknown[] }).items;
  }
  throw new ControllerError('bad-request', 'apply takes {"kind":"List","items":[...]} or a JSON array of objects');
}

/** body-parser reports with `type` strings; turn them into our codes. */
function bodyParserError(error: unknown): ControllerError | undefined {
  if (typeof error !== 'object' || error === null || !('type' in error)) return undefined;
  const message = error instanceof Error ? error.message : 'bad request body';
  switch ((error).type) {
    case 'entity.too.large':
      return new ControllerError('too-large', `request body is larger than the limit of ${MAX_BODY_BYTES} bytes`);
    case 'entity.parse.failed':
      return new ControllerError('bad-request', `malformed JSON in request body: ${message}`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
    case 'request.aborted':
      return new ControllerError('bad-request', message);
    default:
      return undefined;
  }
}
