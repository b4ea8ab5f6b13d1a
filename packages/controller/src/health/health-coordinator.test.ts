import { describe, expect, it } from 'vitest';
import type { Resource } from '@sluice/api';
import { HealthStatus, ResourceType, type AgentReport, type Directive } from '@sluice/proto';
import { endpointId } from '@sluice/translator';
import type { SnapshotSource } from '../discovery/snapshot-cache.js';
import type { TranslationOutput } from '../discovery/translator-port.js';
import { silentLogger } from '../logger.js';
import type { ResourceSnapshot } from '../resources/resource-cache.js';
import { Watchable } from '../watchable.js';
import { targetKey } from './assignment.js';
import { HealthCoordinator, type MergedHealth } from './health-coordinator.js';

const CLUSTER = 'default/shop';
const ADDRESSES = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];
const ids = ADDRESSES.map((a) => endpointId(CLUSTER, a, 80));

function upstreamSnapshot(revision: number, healthCheck = true): ResourceSnapshot {
  const upstream = {
    apiVersion: 'sluice/v1',
    kind: 'Upstream',
    metadata: { name: 'shop', namespace: 'default', resourceVersion: String(revision) },
    spec: {
      endpoints: ADDRESSES.map((address) => ({ address, port: 80, weight: 1 })),
      ...(healthCheck ? { healthCheck: { interval: '1s', timeout: '1s', healthyThreshold: 1, unhealthyThreshold: 1, tcp: {} } } : {}),
    },
  } as unknown as Resource;
  return { revision, objects: new Map([['upstreams/default/shop', upstream]]) };
}

/** Agents labelled `edge=no` hold no cluster; every other agent holds default/shop. */
function snapshotSource(): SnapshotSource {
  return {
    translations: new Watchable<TranslationOutput>({ revision: 1, resources: new Map(), problems: [] }),
    snapshotFor: (labels) => ({
      revision: 1,
      version: 'v',
      resources: labels.edge === 'no' ? [] : [{ type: ResourceType.RESOURCE_TYPE_CLUSTER, name: CLUSTER, version: 'c', encoded: new Uint8Array(), sources: [] }],
    }),
  };
}

function setup(now: { t: number }) {
  const health = new Watchable<ReadonlyMap<string, HealthStatus>>(new Map());
  const merged = new Watchable<MergedHealth>();
  const coordinator = new HealthCoordinator(
    { resources: new Watchable<ResourceSnapshot>(), snapshots: snapshotSource(), health, merged, logger: silentLogger(), now: () => now.t },
    { probersPerEndpoint: 2, reportIntervalMs: 1000 },
  );
  coordinator.setSnapshot(upstreamSnapshot(1));
  const directives = new Map<string, Directive[]>();
  const connect = (id: string, labels: Record<string, string> = {}) => {
    directives.set(id, []);
    return coordinator.connect(id, labels, { send: (d) => directives.get(id)!.push(d) });
  };
  return { coordinator, health, merged, directives, connect };
}

function assigned(directives: Directive[] | undefined): string[] {
  return (directives?.at(-1)?.healthChecks ?? []).flatMap((h) => h.endpointIds);
}

function report(sentAt: number, results: { id: string; healthy: boolean }[]): AgentReport {
  return {
    sentAtUnixMs: sentAt,
    healthOmitted: 0,
    traffic: [],
    trafficOmitted: 0,
    health: results.map((r) => ({ cluster: CLUSTER, endpointId: r.id, healthy: r.healthy, consecutiveSuccesses: 0, consecutiveFailures: 0, lastError: '', observedAtUnixMs: sentAt })),
  };
}

describe('HealthCoordinator', () => {
  it('assigns every endpoint to K agents that hold the cluster and sends each its directive', () => {
    const { coordinator, directives, connect } = setup({ t: 0 });
    for (const id of ['a1', 'a2', 'a3']) connect(id);
    connect('outsider', { edge: 'no' });
    const all = ['a1', 'a2', 'a3'].flatMap((id) => assigned(directives.get(id)));
    expect(all.sort()).toEqual([...ids, ...ids].sort());
    expect(assigned(directives.get('outsider'))).toEqual([]);
    expect(directives.get('a1')!.at(-1)!.reportIntervalMs).toBe(1000);
    for (const key of ids.map((id) => targetKey(CLUSTER, id))) expect(coordinator.current.byEndpoint.get(key)).toHaveLength(2);
  });

  it('merges the assigned agents results: Unhealthy on a majority, Unknown when stale, forgotten on leave', async () => {
    const now = { t: 10_000 };
    const { health, merged, directives, connect } = setup(now);
    const sessions = new Map(['a1', 'a2'].map((id) => [id, connect(id)]));
    // Two agents, K = 2: both probe everything.
    expect(assigned(directives.get('a1')).sort()).toEqual([...ids].sort());
    const [bad, good] = [ids[0]!, ids[1]!];
    for (const s of sessions.values()) s.report(report(now.t, [{ id: bad, healthy: false }, { id: good, healthy: true }]));
    await Promise.resolve();
    expect(health.value?.get(bad)).toBe(HealthStatus.HEALTH_STATUS_UNHEALTHY);
    expect(health.value?.get(good)).toBe(HealthStatus.HEALTH_STATUS_HEALTHY);
    expect(health.value?.has(ids[2]!)).toBe(false); // never reported: Unknown
    expect(merged.value?.endpoints.get(targetKey(CLUSTER, bad))).toMatchObject({ health: 'Unhealthy', reporters: 2, address: '10.0.0.1' });

    // A tie keeps it in.
    sessions.get('a2')!.report(report(now.t, [{ id: bad, healthy: true }]));
    await Promise.resolve();
    expect(health.value?.get(bad)).toBe(HealthStatus.HEALTH_STATUS_HEALTHY);

    // An agent that leaves is forgotten: a1's "unhealthy" alone is a majority of one.
    sessions.get('a2')!.disconnect();
    await Promise.resolve();
    expect(merged.value?.endpoints.get(targetKey(CLUSTER, bad))).toMatchObject({ health: 'Unhealthy', reporters: 1 });

    // Results older than 3 x interval stop counting: stale is Unknown.
    now.t += 3001;
    sessions.get('a1')!.report(report(now.t, []));
    const s = connect('a3'); // any event re-merges; so does the ticker
    s.disconnect();
    await Promise.resolve();
    expect(merged.value?.endpoints.get(targetKey(CLUSTER, bad))).toMatchObject({ health: 'Unknown', reporters: 0 });
    expect(health.value?.has(bad)).toBe(false);
  });

  it('ignores results for endpoints not assigned to the reporter and uses the age on the agent clock', async () => {
    const now = { t: 50_000 };
    const { health, directives, connect } = setup(now);
    const sessions = new Map(['a1', 'a2', 'a3', 'a4', 'a5'].map((id) => [id, connect(id)]));
    const target = ids[0]!;
    const notMine = [...sessions.keys()].find((id) => !assigned(directives.get(id)).includes(target))!;
    sessions.get(notMine)!.report(report(now.t, [{ id: target, healthy: false }]));
    await Promise.resolve();
    expect(health.value?.has(target)).toBe(false);

    const mine = [...sessions.keys()].find((id) => assigned(directives.get(id)).includes(target))!;
    // The agent's clock is an hour ahead; its result is 5 s old there: stale here too.
    const skewed = report(now.t + 3_600_000, [{ id: target, healthy: false }]);
    skewed.health[0]!.observedAtUnixMs -= 5000;
    sessions.get(mine)!.report(skewed);
    await Promise.resolve();
    expect(health.value?.has(target)).toBe(false);
    sessions.get(mine)!.report(report(now.t + 3_600_000, [{ id: target, healthy: false }]));
    await Promise.resolve();
    expect(health.value?.get(target)).toBe(HealthStatus.HEALTH_STATUS_UNHEALTHY);
  });

  it('drops assignments when the Upstream loses its health check', () => {
    const { coordinator, directives, connect } = setup({ t: 0 });
    connect('a1');
    expect(assigned(directives.get('a1'))).toHaveLength(4);
    coordinator.setSnapshot(upstreamSnapshot(2, false));
    expect(assigned(directives.get('a1'))).toEqual([]);
  });
});

describe('HealthCoordinator reconnects', () => {
  it('sends a reconnecting agent its directive even when the assignment is unchanged', () => {
    const { directives, connect } = setup({ t: 0 });
    const first = connect('a1');
    expect(assigned(directives.get('a1'))).toHaveLength(4);
    // The newer stream replaces the older one before the older one is seen to end.
    connect('a1');
    first.disconnect();
    expect(assigned(directives.get('a1'))).toHaveLength(4);
  });
});

describe('HealthCoordinator on a follower', () => {
  /** The snapshot with the status the leader wrote: the first endpoint Unhealthy, the second Healthy. */
  function withStoredStatus(revision: number): ResourceSnapshot {
    const snapshot = upstreamSnapshot(revision);
    const upstream = snapshot.objects.get('upstreams/default/shop') as unknown as { status?: unknown };
    upstream.status = {
      endpoints: [
        { address: ADDRESSES[0], port: 80, health: 'Unhealthy', since: '2026-01-01T00:00:00Z' },
        { address: ADDRESSES[1], port: 80, health: 'Healthy', since: '2026-01-01T00:00:00Z' },
        { address: ADDRESSES[2], port: 80, health: 'Unknown', since: '2026-01-01T00:00:00Z' },
        // Not (or no longer) an endpoint of the spec: ignored.
        { address: '10.9.9.9', port: 80, health: 'Healthy', since: '2026-01-01T00:00:00Z' },
      ],
    };
    return snapshot;
  }

  it('translates the health the leader stored, not its own merge, and switches on leadership', async () => {
    const leadership = new Watchable<boolean>(false);
    const health = new Watchable<ReadonlyMap<string, HealthStatus>>(new Map());
    const merged = new Watchable<MergedHealth>();
    const clock = { t: 1000 };
    const coordinator = new HealthCoordinator(
      { resources: new Watchable<ResourceSnapshot>(), snapshots: snapshotSource(), health, merged, logger: silentLogger(), now: () => clock.t, leadership },
      { probersPerEndpoint: 2, reportIntervalMs: 1000 },
    );
    coordinator.setSnapshot(withStoredStatus(1));
    await Promise.resolve();
    const stored = [
      [ids[0]!, HealthStatus.HEALTH_STATUS_UNHEALTHY],
      [ids[1]!, HealthStatus.HEALTH_STATUS_HEALTHY],
    ].sort(([x], [y]) => ((x as string) < (y as string) ? -1 : 1));
    expect([...health.value!]).toEqual(stored);

    // Leading, before any result can have arrived: the stored verdicts stand (a handover
    // must not route to an endpoint the previous leader found Unhealthy) ...
    const abort = new AbortController();
    await coordinator.start(abort.signal);
    leadership.publish(true);
    for (let i = 0; i < 50 && merged.value?.endpoints.get(targetKey(CLUSTER, ids[0]!))?.health !== 'Unhealthy'; i++) await new Promise((r) => setTimeout(r, 1));
    expect(merged.value!.endpoints.get(targetKey(CLUSTER, ids[0]!))).toMatchObject({ health: 'Unhealthy', reporters: 0 });
    expect([...health.value!]).toEqual(stored);

    // ... and once results could have arrived but none did, its own merge decides: no verdicts.
    clock.t += 3001;
    coordinator.setSnapshot(withStoredStatus(2));
    await Promise.resolve();
    expect(health.value!.size).toBe(0);
    abort.abort();
    await coordinator.close();
  });
});
