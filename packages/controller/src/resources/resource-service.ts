import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  API_VERSION,
  kindInfo,
  matchLabels,
  specOf,
  validateResource,
  type FieldError,
  type KindInfo,
  type LabelSelector,
  type Resource,
} from '@sluice/api';
import { ControllerError } from '../errors.js';
import { StoreError, type Compare, type KeyValue, type Store, type TxnOp } from '../store/index.js';
import { applyMergePatch, isPlainObject } from './merge-patch.js';
import { ResourceKeys } from './resource-keys.js';

export type ApplyAction = 'created' | 'configured' | 'unchanged';

export interface ApplyItem {
  kind: string;
  namespace?: string;
  name: string;
  action: ApplyAction;
  object: Resource;
}

export interface WatchEventOut {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Resource;
}

export interface WriteOptions {
  dryRun?: boolean;
}

interface Current {
  kv: KeyValue;
  object: Resource;
}

/** How often a write retries when another writer raced it between read and compare-and-swap. */
const MAX_CAS_RETRIES = 5;

/**
 * The resource API over a Store, shared by the admin HTTP server and the controller's own
 * runners. It owns server-managed metadata (uid, generation, creationTimestamp,
 * resourceVersion) and the rule that users write spec while only the controller writes status.
 * Every write is one store transaction guarded by compare-and-swap, so a rejected write
 * leaves nothing behind and concurrent writers cannot lose each other's updates.
 */
export class ResourceService {
  readonly keys: ResourceKeys;

  constructor(
    readonly store: Store,
    options: { prefix: string; now?: () => Date },
  ) {
    this.keys = new ResourceKeys(options.prefix);
    this.now = options.now ?? (() => new Date());
  }

  private readonly now: () => Date;

  async get(kind: KindInfo, namespace: string | undefined, name: string): Promise<Resource> {
    const current = await this.read(kind, namespace, name);
    if (!current) throw notFound(kind, name);
    return current.object;
  }

  async list(
    kind: KindInfo,
    namespace: string | undefined,
    selector?: LabelSelector,
  ): Promise<{ items: Resource[]; revision: number }> {
    const { items, revision } = await this.store.list(this.keys.list(kind, namespace));
    const objects = items.map(decode).filter((o) => !selector || matchLabels(selector, o.metadata.labels));
    return { items: objects, revision };
  }

  async create(kind: KindInfo, namespace: string | undefined, body: unknown, options: WriteOptions = {}): Promise<Resource> {
    const desired = this.validateFor(kind, namespace, body);
    const key = this.keyOf(kind, desired);
    const object = this.newObject(desired);
    if (options.dryRun) {
      if (await this.store.get(key)) throw alreadyExists(kind, desired.metadata.name);
      return object;
    }
    const result = await this.store.txn([{ key, modRevision: 0 }], [{ type: 'put', key, value: encode(object) }]);
    if (!result.succeeded) throw alreadyExists(kind, desired.metadata.name);
    return withVersion(object, result.revision);
  }

  /** PUT: replaces labels, annotations and spec. With `metadata.resourceVersion`, only if it is current. */
  async replace(
    kind: KindInfo,
    namespace: string | undefined,
    name: string,
    body: unknown,
    options: WriteOptions = {},
  ): Promise<Resource> {
    const desired = this.validateFor(kind, namespace, body, name);
    const expected = desired.metadata.resourceVersion;
    return this.update(kind, namespace, name, expected, () => desired, options);
  }

  /** PATCH with a JSON merge patch (RFC 7386) on the current object. */
  async patch(
    kind: KindInfo,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    options: WriteOptions = {},
  ): Promise<Resource> {
    if (!isPlainObject(patch)) throw new ControllerError('bad-request', 'a merge patch must be a JSON object');
    const expected = resourceVersionOf(patch);
    return this.update(kind, namespace, name, expected, (current) => {
      const { status: _status, ...rest } = current;
      return this.validateFor(kind, namespace, applyMergePatch(rest, patch), name);
    }, options);
  }

  async delete(kind: KindInfo, namespace: string | undefined, name: string, options: WriteOptions = {}): Promise<Resource> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.read(kind, namespace, name);
      if (!current) throw notFound(kind, name);
      if (options.dryRun) return current.object;
      const result = await this.store.txn(
        [{ key: current.kv.key, modRevision: current.kv.modRevision }],
        [{ type: 'delete', key: current.kv.key }],
      );
      if (result.succeeded) return current.object;
      if (attempt >= MAX_CAS_RETRIES) throw busy(kind, name);
    }
  }

  /**
   * Writes `status` only, for controller runners. Skips the write when nothing changed; the
   * compare-and-swap on `expectedRevision` means a status computed from an old object is
   * dropped (the caller recomputes from the new one, level-triggered).
   */
  async writeStatus(
    kind: KindInfo,
    namespace: string | undefined,
    name: string,
    expectedRevision: string,
    status: Record<string, unknown>,
  ): Promise<'written' | 'unchanged' | 'stale'> {
    const current = await this.read(kind, namespace, name);
    if (!current || String(current.kv.modRevision) !== expectedRevision) return 'stale';
    const before = (current.object as { status?: unknown }).status;
    if (isDeepStrictEqual(before, status)) return 'unchanged';
    const next = { ...current.object, status } as Resource;
    const result = await this.store.txn(
      [{ key: current.kv.key, modRevision: current.kv.modRevision }],
      [{ type: 'put', key: current.kv.key, value: encode(next) }],
    );
    return result.succeeded ? 'written' : 'stale';
  }

  /**
   * Creates or updates an object on behalf of the controller itself, for kinds users may not
   * write (Agent). Never reachable through the admin API. `build` gets the current object
   * (undefined when absent) and returns the desired body, status included, or undefined to
   * leave the object alone. The body is validated; server-managed metadata follow the same
   * rules as user writes; a write that changes nothing is skipped; a race with another writer
   * re-runs `build` on the newer object.
   */
  async upsertInternal(
    kind: KindInfo,
    namespace: string | undefined,
    name: string,
    build: (current: Resource | undefined) => Record<string, unknown> | undefined,
  ): Promise<'created' | 'updated' | 'unchanged' | 'skipped'> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.read(kind, namespace, name);
      const body = build(current?.object);
      if (body === undefined) return 'skipped';
      const result = validateResource({ apiVersion: API_VERSION, kind: kind.kind, ...body });
      if (!result.ok) {
        throw new ControllerError('invalid', `${kind.kind} "${name}" is invalid: ${result.errors.map(formatCause).join('; ')}`, {
          kind: kind.kind,
          name,
          causes: result.errors,
        });
      }
      const desired = result.value;
      if (desired.kind !== kind.kind || desired.metadata.name !== name || (kind.namespaced && desired.metadata.namespace !== (namespace ?? 'default'))) {
        throw new ControllerError('internal', `upsert of ${kind.singular} "${name}" was given another object`);
      }
      // Compared as stored (JSON), so an undefined field is no change.
      const status = jsonCopy((desired as { status?: unknown }).status);
      if (current && sameDesiredState(current.object, desired) && isDeepStrictEqual((current.object as { status?: unknown }).status, status)) {
        return 'unchanged';
      }
      const next = current ? this.nextObject(current.object, desired) : this.newObject(desired);
      const object = (status === undefined ? next : { ...next, status }) as Resource;
      const key = this.keyOf(kind, desired);
      const written = await this.store.txn([{ key, modRevision: current?.kv.modRevision ?? 0 }], [{ type: 'put', key, value: encode(object) }]);
      if (written.succeeded) return current ? 'updated' : 'created';
      if (attempt >= MAX_CAS_RETRIES) throw busy(kind, name);
    }
  }

  /**
   * Applies many objects all-or-nothing: every object is validated first (causes carry
   * `items[i].`), then one transaction creates or replaces those whose desired state changed,
   * guarded by compare-and-swap on every key it read.
   */
  async apply(bodies: unknown[], options: WriteOptions = {}): Promise<ApplyItem[]> {
    const errors: FieldError[] = [];
    const desired: { kind: KindInfo; object: Resource; key: string }[] = [];
    const seen = new Map<string, number>();
    bodies.forEach((body, index) => {
      const result = validateResource(body);
      if (!result.ok) {
        for (const e of result.errors) errors.push({ field: `items[${index}].${e.field}`, message: e.message });
        return;
      }
      const kind = kindInfo(result.value.kind);
      if (!kind) return; // validateResource accepts only known kinds
      if (!kind.userWritable) {
        errors.push({ field: `items[${index}].kind`, message: `${kind.kind} objects are written by the controller, not applied` });
        return;
      }
      const key = this.keyOf(kind, result.value);
      const first = seen.get(key);
      if (first !== undefined) {
        errors.push({ field: `items[${index}].metadata.name`, message: `duplicate of items[${first}] (${kind.singular}/${result.value.metadata.name})` });
        return;
      }
      seen.set(key, index);
      desired.push({ kind, object: result.value, key });
    });
    if (errors.length > 0) {
      throw new ControllerError('invalid', `apply rejected, nothing was written: ${errors.map(formatCause).join('; ')}`, {
        causes: errors,
      });
    }

    for (let attempt = 0; ; attempt++) {
      const currents = await Promise.all(desired.map((d) => this.store.get(d.key)));
      const compares: Compare[] = [];
      const ops: TxnOp[] = [];
      const planned = desired.map((d, i) => {
        const kv = currents[i];
        compares.push({ key: d.key, modRevision: kv?.modRevision ?? 0 });
        if (!kv) {
          const object = this.newObject(d.object);
          ops.push({ type: 'put', key: d.key, value: encode(object) });
          return { d, action: 'created' as const, object };
        }
        const current = decode(kv);
        if (sameDesiredState(current, d.object)) return { d, action: 'unchanged' as const, object: current };
        const object = this.nextObject(current, d.object);
        ops.push({ type: 'put', key: d.key, value: encode(object) });
        return { d, action: 'configured' as const, object };
      });
      let revision: number | undefined;
      if (!options.dryRun && ops.length > 0) {
        const result = await this.store.txn(compares, ops);
        if (!result.succeeded) {
          if (attempt >= MAX_CAS_RETRIES) throw new ControllerError('conflict', 'apply raced other writers too often; try again');
          continue;
        }
        revision = result.revision;
      }
      return planned.map(({ d, action, object }) => ({
        kind: d.kind.kind,
        ...(d.kind.namespaced ? { namespace: d.object.metadata.namespace ?? 'default' } : {}),
        name: d.object.metadata.name,
        action,
        object: action === 'unchanged' || revision === undefined ? object : withVersion(object, revision),
      }));
    }
  }

  /**
   * Watch events for a kind (all kinds when `kind` is undefined), as Kubernetes sends them:
   * without `fromRevision`, an ADDED event per existing object first; then every change.
   * Objects moving in or out of the label selector appear as ADDED / DELETED.
   */
  async *watch(
    kind: KindInfo,
    namespace: string | undefined,
    options: { resourceVersion?: number; selector?: LabelSelector },
    signal: AbortSignal,
  ): AsyncGenerator<WatchEventOut> {
    const matches = (o: Resource | undefined) =>
      o !== undefined && (!options.selector || matchLabels(options.selector, o.metadata.labels));
    let from: number;
    if (options.resourceVersion === undefined) {
      const { items, revision } = await this.list(kind, namespace, options.selector);
      for (const object of items) yield { type: 'ADDED', object };
      from = revision + 1;
    } else {
      from = options.resourceVersion + 1;
    }
    try {
      for await (const batch of this.store.watch(this.keys.list(kind, namespace), from, signal)) {
        for (const event of batch.events) {
          const before = event.prevKv ? decode(event.prevKv) : undefined;
          if (event.type === 'delete') {
            if (before && matches(before)) yield { type: 'DELETED', object: withVersion(before, event.kv.modRevision) };
            continue;
          }
          const after = decode(event.kv);
          const wasIn = matches(before);
          const isIn = matches(after);
          if (isIn) yield { type: wasIn ? 'MODIFIED' : 'ADDED', object: after };
          else if (wasIn) yield { type: 'DELETED', object: after };
        }
      }
    } catch (error) {
      if (error instanceof StoreError && error.code === 'compacted') {
        throw new ControllerError('gone', `too old resource version: ${from - 1} (history before it was compacted)`, {}, { cause: error });
      }
      throw error;
    }
  }

  private async read(kind: KindInfo, namespace: string | undefined, name: string): Promise<Current | undefined> {
    const kv = await this.store.get(this.keys.object(kind, namespace, name));
    return kv ? { kv, object: decode(kv) } : undefined;
  }

  private async update(
    kind: KindInfo,
    namespace: string | undefined,
    name: string,
    expectedVersion: string | undefined,
    desiredFrom: (current: Resource) => Resource,
    options: WriteOptions,
  ): Promise<Resource> {
    if (!kind.userWritable) throw readOnly(kind);
    for (let attempt = 0; ; attempt++) {
      const current = await this.read(kind, namespace, name);
      if (!current) throw notFound(kind, name);
      if (expectedVersion !== undefined && expectedVersion !== String(current.kv.modRevision)) {
        throw conflict(kind, name);
      }
      const desired = desiredFrom(current.object);
      if (sameDesiredState(current.object, desired)) return current.object;
      const object = this.nextObject(current.object, desired);
      if (options.dryRun) return object;
      const result = await this.store.txn(
        [{ key: current.kv.key, modRevision: current.kv.modRevision }],
        [{ type: 'put', key: current.kv.key, value: encode(object) }],
      );
      if (result.succeeded) return withVersion(object, result.revision);
      // Someone wrote in between. With an explicit resourceVersion that is a conflict for
      // the caller; without one the write is unconditional, so read again and retry.
      if (expectedVersion !== undefined) throw conflict(kind, name);
      if (attempt >= MAX_CAS_RETRIES) throw busy(kind, name);
    }
  }

  /** Validates a body for a kind-specific path; the path's namespace and name must agree with the body's. */
  private validateFor(kind: KindInfo, namespace: string | undefined, body: unknown, name?: string): Resource {
    if (!kind.userWritable) throw readOnly(kind);
    if (!isPlainObject(body)) throw new ControllerError('bad-request', 'the request body must be a JSON object');
    const meta = isPlainObject(body.metadata) ? body.metadata : undefined;
    // Fill what the path implies, so `POST .../namespaces/prod/upstreams` needs no namespace in the body.
    const filled = {
      apiVersion: API_VERSION,
      kind: kind.kind,
      ...body,
      metadata: { ...(name !== undefined ? { name } : {}), ...(kind.namespaced && namespace ? { namespace } : {}), ...meta },
    };
    const result = validateResource(filled);
    if (!result.ok) {
      const shown = typeof meta?.name === 'string' ? meta.name : (name ?? '');
      throw new ControllerError(
        'invalid',
        `${kind.kind}.${API_VERSION} "${shown}" is invalid: ${result.errors.map(formatCause).join('; ')}`,
        { kind: kind.kind, name: shown, causes: result.errors },
      );
    }
    const object = result.value;
    if (object.kind !== kind.kind) {
      throw new ControllerError('bad-request', `the body's kind ${object.kind} does not match the path (${kind.plural})`);
    }
    if (kind.namespaced && namespace !== undefined && object.metadata.namespace !== namespace) {
      throw new ControllerError('bad-request', `the body's namespace "${object.metadata.namespace}" does not match the path's "${namespace}"`);
    }
    if (name !== undefined && object.metadata.name !== name) {
      throw new ControllerError('bad-request', `the body's name "${object.metadata.name}" does not match the path's "${name}"`);
    }
    return object;
  }

  private keyOf(kind: KindInfo, object: Resource): string {
    return this.keys.object(kind, object.metadata.namespace, object.metadata.name);
  }

  /** A new object: server-managed metadata set, client-sent values for them and status dropped. */
  private newObject(desired: Resource): Resource {
    const { resourceVersion: _rv, uid: _uid, generation: _gen, creationTimestamp: _ts, ...meta } = desired.metadata;
    const { status: _status, ...rest } = desired;
    return {
      ...rest,
      metadata: {
        ...meta,
        uid: randomUUID(),
        generation: 1,
        creationTimestamp: this.now().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      },
    } as Resource;
  }

  /** The replacement of `current` by `desired`: identity and status kept, generation bumped if the spec moved. */
  private nextObject(current: Resource, desired: Resource): Resource {
    const { resourceVersion: _rv, ...currentMeta } = current.metadata;
    const { status: _status, ...rest } = desired;
    const specChanged = !isDeepStrictEqual(specOf(current), specOf(desired));
    const status = (current as { status?: unknown }).status;
    const next: Record<string, unknown> = {
      ...rest,
      metadata: {
        name: currentMeta.name,
        ...(currentMeta.namespace !== undefined ? { namespace: currentMeta.namespace } : {}),
        ...(desired.metadata.labels ? { labels: desired.metadata.labels } : {}),
        ...(desired.metadata.annotations ? { annotations: desired.metadata.annotations } : {}),
        uid: currentMeta.uid,
        generation: (currentMeta.generation ?? 1) + (specChanged ? 1 : 0),
        creationTimestamp: currentMeta.creationTimestamp,
      },
    };
    if (status !== undefined) next.status = status;
    return next as unknown as Resource;
  }
}

/** Same spec (or Secret data), labels and annotations: an apply of it changes nothing. */
function sameDesiredState(current: Resource, desired: Resource): boolean {
  return (
    isDeepStrictEqual(specOf(current), specOf(desired)) &&
    isDeepStrictEqual(current.metadata.labels ?? {}, desired.metadata.labels ?? {}) &&
    isDeepStrictEqual(current.metadata.annotations ?? {}, desired.metadata.annotations ?? {})
  );
}

function resourceVersionOf(body: Record<string, unknown>): string | undefined {
  const meta = body.metadata;
  if (!isPlainObject(meta)) return undefined;
  const version = meta.resourceVersion;
  if (typeof version === 'string' || typeof version === 'number') return String(version);
  if (version === undefined || version === null) return undefined;
  throw new ControllerError('bad-request', 'metadata.resourceVersion must be a string');
}

/** Objects are stored without resourceVersion: it is the key's mod revision, set on read. */
function encode(object: Resource): string {
  const { resourceVersion: _rv, ...metadata } = object.metadata;
  return JSON.stringify({ ...object, metadata });
}

export function decode(kv: KeyValue): Resource {
  return withVersion(JSON.parse(kv.value) as Resource, kv.modRevision);
}

function withVersion(object: Resource, revision: number): Resource {
  return { ...object, metadata: { ...object.metadata, resourceVersion: String(revision) } } as Resource;
}

function formatCause(e: FieldError): string {
  return `${e.field}: ${e.message}`;
}

function notFound(kind: KindInfo, name: string): ControllerError {
  return new ControllerError('not-found', `${kind.plural} "${name}" not found`, { kind: kind.kind, name });
}

function alreadyExists(kind: KindInfo, name: string): ControllerError {
  return new ControllerError('already-exists', `${kind.plural} "${name}" already exists`, { kind: kind.kind, name });
}

function conflict(kind: KindInfo, name: string): ControllerError {
  return new ControllerError(
    'conflict',
    `Operation cannot be fulfilled on ${kind.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { kind: kind.kind, name },
  );
}

function busy(kind: KindInfo, name: string): ControllerError {
  return new ControllerError('conflict', `${kind.singular} "${name}" is being changed by other writers too often; try again`, {
    kind: kind.kind,
    name,
  });
}

function readOnly(kind: KindInfo): ControllerError {
  return new ControllerError('method-not-allowed', `${kind.plural} are written by the controller and cannot be changed through the API`, {
    kind: kind.kind,
  });
}

function jsonCopy(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}
