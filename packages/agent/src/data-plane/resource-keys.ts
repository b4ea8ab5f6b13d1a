import { ResourceType, type Resource, type ResourceKey } from '@sluice/proto';

// Resource keys, shared by the data plane and the agent around it (discovery, status,
// cache): one spelling of "which resource is this" for maps, NACKs and removals.

const TYPE_OF_CASE = {
  secret: ResourceType.RESOURCE_TYPE_SECRET,
  cluster: ResourceType.RESOURCE_TYPE_CLUSTER,
  endpoints: ResourceType.RESOURCE_TYPE_ENDPOINTS,
  routeTable: ResourceType.RESOURCE_TYPE_ROUTE_TABLE,
  listener: ResourceType.RESOURCE_TYPE_LISTENER,
} as const satisfies Record<NonNullable<Resource['body']>['$case'], ResourceType>;

/** A resource's type, from the body it carries. */
export function typeOf(resource: Resource): ResourceType {
  return resource.body === undefined ? ResourceType.RESOURCE_TYPE_UNSPECIFIED : TYPE_OF_CASE[resource.body.$case];
}

/** The key of a resource: its type and its name. */
export function keyOf(resource: Resource): ResourceKey {
  return { type: typeOf(resource), name: resource.name };
}

/** A map key for a resource key, e.g. `RESOURCE_TYPE_LISTENER/default/web`. */
export function keyString(key: ResourceKey | undefined): string {
  return key ? `${key.type}/${key.name}` : '';
}
