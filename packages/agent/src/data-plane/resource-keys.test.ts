import { ResourceType } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { keyOf, keyString } from './resource-keys.js';
import { clusterResource, listenerResource } from './test-support/resources.js';

describe('resource keys', () => {
  it('types a resource by its body and spells one map key per type and name', () => {
    expect(keyOf(listenerResource('default/web'))).toEqual({ type: ResourceType.RESOURCE_TYPE_LISTENER, name: 'default/web' });
    expect(keyString(keyOf(clusterResource('default/web')))).toBe('RESOURCE_TYPE_CLUSTER/default/web');
    expect(keyString(keyOf({ name: 'x', version: 'v1', body: undefined }))).toBe('RESOURCE_TYPE_UNSPECIFIED/x');
    expect(keyString(undefined)).toBe('');
  });
});
