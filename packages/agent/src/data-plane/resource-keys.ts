import { ResourceType, type Resource, type ResourceKey } from '@sluice/proto';

type BodyCase = NonNullable<Resource['body']>['$case'];

const TYPE_OF_CASE: Record<BodyCase, ResourceType> = {
  secret: ResourceType.RESOURCE_TYPE_SECRET,
  cluster: ResourceType.RESOURCE_TYPE_CLUSTER,
  endpoints: ResourceType.RESOURCE_TYPE_ENDPOINTS,
  routeTable: ResourceType.RESOURCE_TYPE_ROUTE_TABLE,
  listener: ResourceType.RESOURCE_TYPE_LISTENER,
};

/** The key of a resource: its type (from the body it carries) and its name. */
export function keyOf(resource: Resource): ResourceKey {
  return { type: resource.body ? TYPE_OF_CASE[resource.body.$case] : ResourceType.RESOURCE_TYPE_UNSPECIFIED, name: resource.name };
}

/** A map key for a resource key, e.g. `RESOURCE_TYPE_LISTENER/default/web`. */
export function keyString(key: ResourceKey | undefined): string {
  return key ? `${key.type}/${key.name}` : '';
}
