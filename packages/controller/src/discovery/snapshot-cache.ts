import { isDeepStrictEqual } from 'node:util';
import type { Resource } from '@sluice/api';
import type { HealthStatus } from '@sluice/proto';
import type { Logger } from '../logger.js';
import type { ResourceSnapshot } from '../resources/resource-cache.js';
import { LoopRunner } from '../runner.js';
import { Watchable } from '../watchable.js';
import type { GroupSnapshot, Labels, ServedResource, TranslationOutput, Translator } from './translator-port.js';

/** What the discovery server needs from the cache (STYLE §4): a change signal and a lookup. */
export interface SnapshotSource {
  /** Replays the current good translation, then each new one. */
  readonly translations: Watchable<TranslationOutput>;
  /** The group snapshot for agents with these labels; undefined until a good one exists. */
  snapshotFor(labels: Labels): GroupSnapshot | undefined;
}

/** A resource snapshot with the translation in force for it (status runners read both at once). */
export interface CacheOutput {
  readonly snapshot: ResourceSnapshot;
  /** The last good translation: of this revision, or of an earlier one if this one failed. */
  readonly translation: TranslationOutput | undefined;
}

/** Agent objects are written by the controller and never translated. */
const NOT_TRANSLATED = new Set(['Agent']);

/**
 * Turns resource snapshots into data-plane snapshots (DESIGN §3): translates each store
 * revision, checks the result for consistency (every referenced resource present, in the whole
 * translation and in the group snapshot of every agent label set being served) and publishes
 * it only then. A failed or inconsistent translation is logged and the last good one stays in
 * force (STYLE §3). Resources are encoded once by the translator and shared by every stream.
 */
export class SnapshotCache<R extends ServedResource, T extends TranslationOutput<R>> extends LoopRunner implements SnapshotSource {
  readonly name = 'snapshot-cache';
  readonly translations = new Watchable<T>();
  readonly outputs = new Watchable<CacheOutput>();
  private current: T | undefined;
  /** Group snapshots of `current`, by label set; those asked for are the label sets in use. */
  private groups = new Map<string, { labels: Labels; group: GroupSnapshot<R> | undefined }>();
  private readonly checked = new WeakSet<GroupSnapshot<R>>();
  private lastInputs: ReadonlyMap<string, Resource> | undefined;
  private lastHealth: ReadonlyMap<string, HealthStatus> | undefined;
  private lastWeights: ReadonlyMap<string, number> | undefined;
  private lastSnapshot: ResourceSnapshot | undefined;
  private lastProblems: readonly unknown[] = [];

  constructor(
    private readonly source: Watchable<ResourceSnapshot>,
    private readonly translator: Translator<R, T>,
    private readonly logger: Logger,
    /** Merged active health (endpoint id -> status), translated into Endpoint.health. */
    private readonly health?: Watchable<ReadonlyMap<string, HealthStatus>>,
    /** Dynamic weights (endpoint id -> data-plane weight), translated into Endpoint.weight. */
    private readonly weights?: Watchable<ReadonlyMap<string, number>>,
  ) {
    super();
  }

  protected async run(signal: AbortSignal): Promise<void> {
    const health = this.health;
    const weights = this.weights;
    await Promise.all([
      (async () => {
        for await (const snapshot of this.source.subscribe(signal)) this.update(snapshot);
      })(),
      health &&
        (async () => {
          // A health change re-translates the last resource snapshot: only the Endpoints
          // resources whose health moved change version, so only they are sent.
          for await (const _ of health.subscribe(signal)) if (this.lastSnapshot) this.update(this.lastSnapshot);
        })(),
      weights &&
        (async () => {
          // The fast path for dynamic weights, likewise: only that upstream's Endpoints change.
          for await (const _ of weights.subscribe(signal)) if (this.lastSnapshot) this.update(this.lastSnapshot);
        })(),
    ]);
  }

  /** The translation in force (last good), if any. */
  get translation(): T | undefined {
    return this.current;
  }

  snapshotFor(labels: Labels): GroupSnapshot | undefined {
    const current = this.current;
    if (!current) return undefined;
    const key = labelsKey(labels);
    const memo = this.groups.get(key);
    if (memo) return memo.group;
    let group: GroupSnapshot<R> | undefined;
    try {
      group = this.translator.snapshotFor(current, labels);
      const problems = this.problemsOf(group);
      if (problems.length > 0) {
        // Only a translator bug gets here: the whole translation was consistent.
        this.logger.error('group snapshot is inconsistent; not serving it', { labels, revision: current.revision, problems });
        group = undefined;
      }
    } catch (error) {
      this.logger.error('group snapshot failed', { labels, revision: current.revision, error: String(error) });
      group = undefined;
    }
    this.groups.set(key, { labels, group });
    return group;
  }

  /** Translates one resource snapshot; publishes only a good result (exported for tests). */
  update(snapshot: ResourceSnapshot): void {
    this.lastSnapshot = snapshot;
    const inputs = translatable(snapshot);
    const health = this.health?.value;
    const weights = this.weights?.value;
    if (this.lastInputs && sameEntries(this.lastInputs, inputs) && health === this.lastHealth && weights === this.lastWeights) {
      // Only Agent objects moved (or nothing): the data plane is the same, skip the work.
      this.outputs.publish({ snapshot, translation: this.current });
      return;
    }
    this.lastInputs = inputs;
    this.lastHealth = health;
    this.lastWeights = weights;
    const next = this.translateChecked(snapshot.revision, [...inputs.values()], health, weights);
    if (next) {
      this.current = next.translation;
      this.groups = next.groups;
      this.translations.publish(next.translation);
    }
    this.outputs.publish({ snapshot, translation: this.current });
  }

  private translateChecked(
    revision: number,
    inputs: Resource[],
    health: ReadonlyMap<string, HealthStatus> | undefined,
    weights?: ReadonlyMap<string, number>,
  ): { translation: T; groups: Map<string, { labels: Labels; group: GroupSnapshot<R> | undefined }> } | undefined {
    const keeping = this.current ? `keeping revision ${this.current.revision}` : 'no snapshot to serve yet';
    let translation: T;
    const groups = new Map<string, { labels: Labels; group: GroupSnapshot<R> | undefined }>();
    const problems: string[] = [];
    try {
      translation = this.translator.translate(inputs, { revision, ...(health ? { health } : {}), ...(weights ? { weights } : {}) });
      problems.push(...this.translator.checkConsistency([...translation.resources.values()]));
      // Every label set served now must get a consistent snapshot from the new translation.
      for (const [key, { labels }] of this.groups) {
        const group = this.translator.snapshotFor(translation, labels);
        problems.push(...this.problemsOf(group).map((p) => `agents labelled ${key}: ${p}`));
        groups.set(key, { labels, group });
      }
    } catch (error) {
      this.logger.error(`translation failed; ${keeping}`, { revision, error: String(error) });
      return undefined;
    }
    if (problems.length > 0) {
      this.logger.error(`translation is inconsistent; ${keeping}`, { revision, problems });
      return undefined;
    }
    if (!isDeepStrictEqual(translation.problems, this.lastProblems)) {
      this.lastProblems = translation.problems;
      if (translation.problems.length > 0) this.logger.warn('translation problems', { revision, problems: translation.problems });
      else this.logger.info('translation problems resolved', { revision });
    }
    return { translation, groups };
  }

  private problemsOf(group: GroupSnapshot<R>): string[] {
    if (this.checked.has(group)) return [];
    const problems = this.translator.checkConsistency(group.resources);
    if (problems.length === 0) this.checked.add(group);
    return problems;
  }
}

function translatable(snapshot: ResourceSnapshot): Map<string, Resource> {
  const out = new Map<string, Resource>();
  for (const [key, object] of snapshot.objects) if (!NOT_TRANSLATED.has(object.kind)) out.set(key, object);
  return out;
}

/** The resource cache keeps unchanged objects by reference, so identity is enough. */
function sameEntries(a: ReadonlyMap<string, Resource>, b: ReadonlyMap<string, Resource>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, object] of a) if (b.get(key) !== object) return false;
  return true;
}

/** `a=1,b=2` with keys sorted: equal label sets share one entry. */
export function labelsKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}
