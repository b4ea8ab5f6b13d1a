import type { Resource } from '@sluice/api';
import type { HealthStatus, ResourceType, Source } from '@sluice/proto';

/**
 * The part of `@sluice/translator` the discovery side uses, as structural types: the snapshot
 * cache and the stream server depend on this small surface (STYLE §4), not on the
 * translator's internals, and tests can hand in DataPlaneResources made by hand.
 */

/** Agent labels (`Node.labels`), matched against Listener agentSelectors. */
export type Labels = Readonly<Record<string, string>>;

/** One data-plane resource, serialized once (`encoded` is the `sluice.v1.Resource` message). */
export interface ServedResource {
  readonly type: ResourceType;
  readonly name: string;
  readonly version: string;
  readonly encoded: Uint8Array;
  readonly sources: readonly Source[];
}

/** What one group of agents (same matched listeners) gets, in make-before-break order. */
export interface GroupSnapshot<R extends ServedResource = ServedResource> {
  readonly revision: number;
  readonly version: string;
  readonly resources: readonly R[];
}

export interface TranslationOutput<R extends ServedResource = ServedResource> {
  readonly revision: number;
  readonly resources: ReadonlyMap<string, R>;
  readonly problems: readonly unknown[];
}

/** The translator's functions, injected so the cache can be tested with a fake one. */
export interface Translator<R extends ServedResource, T extends TranslationOutput<R>> {
  translate(resources: readonly Resource[], options: { revision: number; health?: ReadonlyMap<string, HealthStatus>; weights?: ReadonlyMap<string, number> }): T;
  snapshotFor(translation: T, labels: Labels): GroupSnapshot<R>;
  checkConsistency(resources: Iterable<R>): string[];
}
