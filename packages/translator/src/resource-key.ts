import { ResourceType } from '@sluice/proto';

/**
 * Make-before-break order: what a resource references is sent before it. Removals go the
 * other way round.
 */
export const RESOURCE_ORDER: readonly ResourceType[] = Object.freeze([
  ResourceType.RESOURCE_TYPE_SECRET,
  ResourceType.RESOURCE_TYPE_CLUSTER,
  ResourceType.RESOURCE_TYPE_ENDPOINTS,
  ResourceType.RESOURCE_TYPE_ROUTE_TABLE,
  ResourceType.RESOURCE_TYPE_LISTENER,
]);

const SHORT_TYPE: Record<ResourceType, string> = {
  [ResourceType.RESOURCE_TYPE_UNSPECIFIED]: 'unspecified',
  [ResourceType.RESOURCE_TYPE_SECRET]: 'secret',
  [ResourceType.RESOURCE_TYPE_CLUSTER]: 'cluster',
  [ResourceType.RESOURCE_TYPE_ENDPOINTS]: 'endpoints',
  [ResourceType.RESOURCE_TYPE_ROUTE_TABLE]: 'route-table',
  [ResourceType.RESOURCE_TYPE_LISTENER]: 'listener',
  [ResourceType.UNRECOGNIZED]: 'unrecognized',
};

/** Short, readable type name used in keys and messages: `route-table`. */
export function typeLabel(type: ResourceType): string {
  return SHORT_TYPE[type];
}

/**
 * The key of a data-plane resource in maps and logs: `cluster/default/shop-v1`. The type has
 * no slash, so the key is unambiguous although names contain one.
 */
export function resourceKey(type: ResourceType, name: string): string {
  return `${SHORT_TYPE[type]}/${name}`;
}

/** Position in make-before-break order (unknown types last). */
export function orderOf(type: ResourceType): number {
  const i = RESOURCE_ORDER.indexOf(type);
  return i < 0 ? RESOURCE_ORDER.length : i;
}

/** Plain code-unit order, locale independent: the same on every replica. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Make-before-break order, then name. */
export function compareResources(a: { type: ResourceType; name: string }, b: { type: ResourceType; name: string }): number {
  return orderOf(a.type) - orderOf(b.type) || compareStrings(a.name, b.name);
}
