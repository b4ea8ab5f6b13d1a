import { afterEach, describe, expect, it, vi } from 'vitest';
import { AgentReport, ProtocolVersion, type Directive, type EndpointHealth } from '@sluice/proto';
import { ClusterTraffic, drainTraffic, TryOutcome } from '../data-plane/endpoint-stats.js';
import { silentLogger } from '../logger.js';
import { MAX_HEALTH_RESULTS_PER_REPORT, MAX_TRAFFIC_PER_REPORT, ReportClient, type HealthSource, type ReportStreamHandlers, type TrafficSource } from './report-client.js';

const node = { id: 'a1', labels: {}, version: '0.1.0', capabilities: [], protocolVersion: ProtocolVersion.PROTOCOL_VERSION_V1 };

function result(i: number): EndpointHealth {
  return { cluster: 'default/shop', endpointId: `e${String(i).padStart(5, '0')}`, healthy: true, consecutiveSuccesses: 1, consecutiveFailures: 0, lastError: '', observedAtUnixMs: 1 };
}

function fakes(results: EndpointHealth[] = [result(1)], traffic?: TrafficSource) {
  const streams: { address: string; handlers: ReportStreamHandlers; sent: AgentReport[]; cancelled: boolean }[] = [];
  const assigned: Directive['healthChecks'][] = [];
  let stops = 0;
  const health: HealthSource = {
    assign: (a) => assigned.push(a),
    stop: () => void stops++,
    results: () => results,
  };
  const client = new ReportClient({
    controllers: ['c1:1', 'c2:1'],
    node,
    health,
    traffic,
    logger: silentLogger(),
    timing: { initialBackoffMs: 100, maxBackoffMs: 100 },
    random: () => 0.5,
    now: () => 42,
    openStream: (address, handlers) => {
      const s = { address, handlers, sent: [] as AgentReport[], cancelled: false };
      streams.push(s);
      return { send: (r) => s.sent.push(r), cancel: () => void (s.cancelled = true) };
    },
  });
  return { client, streams, assigned, stops: () => stops };
}

afterEach(() => vi.useRealTimers());

describe('ReportClient redirects (reports go to the leader)', () => {
  it('follows report_to at once, without its assignments, and stays where it is kept', () => {
    vi.useFakeTimers();
    const { client, streams, assigned, stops } = fakes();
    client.start();
    expect(streams[0]!.address).toBe('c1:1');
    streams[0]!.handlers.directive({ reportIntervalMs: 200, reportTo: 'leader:9', healthChecks: [] });
    expect(streams[0]!.cancelled).toBe(true);
    expect(stops()).toBe(1);
    expect(assigned).toEqual([]);
    vi.advanceTimersByTime(0);
    expect(streams).toHaveLength(2);
    expect(streams[1]!.address).toBe('leader:9');
    expect(streams[1]!.sent[0]!.node).toEqual(node);
    // The leader keeps it: an empty report_to.
    streams[1]!.handlers.directive({ reportIntervalMs: 200, reportTo: '', healthChecks: [{ cluster: 'default/shop', endpointIds: ['e1'] }] });
    expect(assigned).toEqual([[{ cluster: 'default/shop', endpointIds: ['e1'] }]]);
    expect(client.redirectedTo).toBe('leader:9');
    // A directive naming the address it is connected to keeps it too.
    streams[1]!.handlers.directive({ reportIntervalMs: 200, reportTo: 'leader:9', healthChecks: [] });
    expect(streams[1]!.cancelled).toBe(false);
    vi.advanceTimersByTime(1000);
    expect(streams).toHaveLength(2);
    client.stop();
  });

  it('falls back to its controllers when the leader it was sent to cannot be reached', () => {
    vi.useFakeTimers();
    const { client, streams } = fakes();
    client.start();
    streams[0]!.handlers.directive({ reportIntervalMs: 200, reportTo: 'leader:9', healthChecks: [] });
    vi.advanceTimersByTime(0);
    streams[1]!.handlers.closed(14, 'connection refused');
    expect(client.redirectedTo).toBeUndefined();
    vi.advanceTimersByTime(100);
    expect(streams).toHaveLength(3);
    expect(streams[2]!.address).toBe('c2:1');
    client.stop();
  });

  it('follows a new report_to when leadership moves, and backs off after two hops in a row', () => {
    vi.useFakeTimers();
    const { client, streams } = fakes();
    client.start();
    streams[0]!.handlers.directive({ reportIntervalMs: 200, reportTo: 'a:9', healthChecks: [] });
    vi.advanceTimersByTime(0);
    streams[1]!.handlers.directive({ reportIntervalMs: 200, reportTo: 'b:9', healthChecks: [] });
    vi.advanceTimersByTime(0);
    expect(streams.map((s) => s.address)).toEqual(['c1:1', 'a:9', 'b:9']);
    // A third hop in a row (stale addresses bouncing) waits a backoff.
    streams[2]!.handlers.directive({ reportIntervalMs: 200, reportTo: 'a:9', healthChecks: [] });
    vi.advanceTimersByTime(0);
    expect(streams).toHaveLength(3);
    vi.advanceTimersByTime(100);
    expect(streams.map((s) => s.address)).toEqual(['c1:1', 'a:9', 'b:9', 'a:9']);
    client.stop();
  });
});

describe('ReportClient', () => {
  it('opens with the node, applies directives and reports every interval', () => {
    vi.useFakeTimers();
    const { client, streams, assigned } = fakes();
    client.start();
    expect(streams[0]!.sent[0]).toMatchObject({ node, sentAtUnixMs: 42, health: [result(1)], healthOmitted: 0 });
    streams[0]!.handlers.directive({ reportIntervalMs: 200, reportTo: '', healthChecks: [{ cluster: 'default/shop', endpointIds: ['e1'] }] });
    expect(assigned).toEqual([[{ cluster: 'default/shop', endpointIds: ['e1'] }]]);
    vi.advanceTimersByTime(1000);
    expect(streams[0]!.sent).toHaveLength(6);
    expect(streams[0]!.sent[1]!.node).toBeUndefined();
    client.stop();
    expect(streams[0]!.cancelled).toBe(true);
  });

  it('drops its assignments when the stream ends and reconnects to the next controller', () => {
    vi.useFakeTimers();
    const { client, streams, stops } = fakes();
    client.start();
    streams[0]!.handlers.directive({ reportIntervalMs: 100, reportTo: '', healthChecks: [] });
    streams[0]!.handlers.closed(14, 'gone');
    expect(stops()).toBe(1);
    vi.advanceTimersByTime(500);
    expect(streams).toHaveLength(2);
    expect(streams[1]!.address).toBe('c2:1');
    expect(streams[1]!.sent[0]!.node).toEqual(node);
    client.stop();
  });

  it('caps the results per report and sends the rest in turns', () => {
    const all = Array.from({ length: MAX_HEALTH_RESULTS_PER_REPORT + 10 }, (_, i) => result(i));
    const { client } = fakes(all);
    const first = client.buildReport(true);
    const second = client.buildReport(false);
    expect(first.health).toHaveLength(MAX_HEALTH_RESULTS_PER_REPORT);
    expect(first.healthOmitted).toBe(10);
    const seen = new Set([...first.health, ...second.health].map((h) => h.endpointId));
    expect(seen.size).toBe(all.length);
  });

  it('sends traffic deltas, none in the first report of a stream, and stays bounded with many endpoints', () => {
    // Names of 64 bytes, every count at a wide varint: the worst case the docs promise to bound.
    const cluster = new ClusterTraffic(`ns/${'c'.repeat(61)}`);
    const source = { drainTraffic: (max: number) => drainTraffic([cluster], max) };
    const { client, streams } = fakes([], source);
    const busy = (n: number) => {
      for (let i = 0; i < n; i++) {
        const c = cluster.counters(`e${String(i).padStart(63, '0')}`);
        c.start();
        c.end(3, TryOutcome.OK);
        c.requests = c.errors5xx = c.connectFailures = c.timeouts = c.resets = 2 ** 50;
        c.buckets.fill(2 ** 50);
        c.ewmaMs = 123_456.789;
        c.inFlight = 2 ** 31;
      }
    };
    busy(10);
    client.start();
    // Counts from before the stream are dropped; the in-flight gauge is still reported.
    expect(streams[0]!.sent[0]!.traffic.map((t) => [t.requests, t.inFlight])).toEqual(new Array(10).fill([0, 2 ** 31]));
    busy(10_000);
    const report = client.buildReport(false);
    expect(report.traffic).toHaveLength(MAX_TRAFFIC_PER_REPORT);
    expect(report.trafficOmitted).toBe(10_000 - MAX_TRAFFIC_PER_REPORT);
    expect(AgentReport.encode(report).finish().length).toBeLessThan(1.5 * 1024 * 1024);
    client.stop();
  });
});
