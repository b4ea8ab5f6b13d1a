import {
  Cluster,
  Endpoints,
  Listener,
  Resource as WireResource,
  ResourceType,
  RouteTable,
  Secret,
  type Source,
} from '@sluice/proto';
import { shortHash } from './hash.js';
import { compareResources, compareStrings, resourceKey } from './resource-key.js';

/** A reference from one data-plane resource to another it needs on the same agent. */
export interface ResourceRef {
  type: ResourceType;
  name: string;
}

export interface DataPlaneResource {
  type: ResourceType;
  name: string;
  /** First 16 hex digits of sha256 over the body's protobuf encoding. */
  version: string;
  /** `{ name, version, body: { $case, value } }`, as sent on the wire. */
  resource: WireResource;
  /** `Resource.encode(resource).finish()`, computed once; every stream reuses these bytes. */
  encoded: Uint8Array;
  /** The user objects it came from, sorted by kind, namespace, name. */
  sources: Source[];
  /** The resources it needs (listener -> route table, secrets; route table -> clusters; cluster -> endpoints). */
  references: ResourceRef[];
}

export type Body = NonNullable<WireResource['body']>;

const TYPE_OF_CASE: Record<Body['$case'], ResourceType> = {
  secret: ResourceType.RESOURCE_TYPE_SECRET,
  cluster: ResourceType.RESOURCE_TYPE_CLUSTER,
  endpoints: ResourceType.RESOURCE_TYPE_ENDPOINTS,
  routeTable: ResourceType.RESOURCE_TYPE_ROUTE_TABLE,
  listener: ResourceType.RESOURCE_TYPE_LISTENER,
};

/** The protobuf encoding of the body message alone: what the version hashes. */
function encodeBody(body: Body): Uint8Array {
  switch (body.$case) {
    case 'secret':
      return Secret.encode(body.value).finish();
    case 'cluster':
      return Cluster.encode(body.value).finish();
    case 'endpoints':
      return Endpoints.encode(body.value).finish();
    case 'routeTable':
      return RouteTable.encode(body.value).finish();
    case 'listener':
      return Listener.encode(body.value).finish();
  }
}

export function compareSources(a: Source, b: Source): number {
  return compareStrings(a.kind, b.kind) || compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name);
}

/** Sorted, without duplicates. */
export function uniqueSources(sources: readonly Source[]): Source[] {
  const out: Source[] = [];
  for (const s of [...sources].sort(compareSources)) {
    const last = out[out.length - 1];
    if (last === undefined || compareSources(last, s) !== 0) out.push(s);
  }
  return out;
}

function uniqueRefs(refs: readonly ResourceRef[]): ResourceRef[] {
  const out: ResourceRef[] = [];
  for (const r of [...refs].sort(compareResources)) {
    const last = out[out.length - 1];
    if (last === undefined || compareResources(last, r) !== 0) out.push(r);
  }
  return out;
}

/** Builds the resource: version from the body's bytes, then the wire bytes, once. */
export function makeResource(name: string, body: Body, sources: readonly Source[], references: readonly ResourceRef[]): DataPlaneResource {
  const version = shortHash(encodeBody(body));
  const resource: WireResource = { name, version, body };
  return {
    type: TYPE_OF_CASE[body.$case],
    name,
    version,
    resource,
    encoded: WireResource.encode(resource).finish(),
    sources: uniqueSources(sources),
    references: uniqueRefs(references),
  };
}

export function keyOf(r: { type: ResourceType; name: string }): string {
  return resourceKey(r.type, r.name);
}

/**
 * A resource as people read it (`sluicectl translate`, golden files): type, name, version and
 * the body in proto JSON, e.g. `{type: RESOURCE_TYPE_CLUSTER, name, version, cluster: {...}}`.
 */
export function resourceToJSON(r: DataPlaneResource): Record<string, unknown> {
  const { name: _name, version: _version, ...body } = WireResource.toJSON(r.resource) as Record<string, unknown>;
  return { type: r.type, name: r.name, version: r.version, ...body };
}
