import { Resource } from '@sluice/proto';

/** A minimal listener resource, enough for the control side (the data plane is faked). */
export function listener(name: string, version = 'v1', port = 8080): Resource {
  return Resource.fromPartial({ name, version, body: { $case: 'listener', value: { port } } });
}

export function cluster(name: string, version = 'v1'): Resource {
  return Resource.fromPartial({ name, version, body: { $case: 'cluster', value: {} } });
}
