import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProtocolVersion, type AgentReport, type Directive, type EndpointHealth } from '@sluice/proto';
import { silentLogger } from '../logger.js';
import { MAX_HEALTH_RESULTS_PER_REPORT, ReportClient, type HealthSource, type ReportStreamHandlers } from './report-client.js';

const node = { id: 'a1', labels: {}, version: '0.1.0', capabilities: [], protocolVersion: ProtocolVersion.PROTOCOL_VERSION_V1 };

function result(i: number): EndpointHealth {
  return { cluster: 'default/shop', endpointId: `e${String(i).padStart(5, '0')}`, healthy: true, consecutiveSuccesses: 1, consecutiveFailures: 0, lastError: '', observedAtUnixMs: 1 };
}

function fakes(results: EndpointHealth[] = [result(1)]) {
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

describe('ReportClient', () => {
  it('opens with the node, applies directives and reports every interval', () => {
    vi.useFakeTimers();
    const { client, streams, assigned } = fakes();
    client.start();
    expect(streams[0]!.sent[0]).toMatchObject({ node, sentAtUnixMs: 42, health: [result(1)], healthOmitted: 0 });
    streams[0]!.handlers.directive({ reportIntervalMs: 200, healthChecks: [{ cluster: 'default/shop', endpointIds: ['e1'] }] });
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
    streams[0]!.handlers.directive({ reportIntervalMs: 100, healthChecks: [] });
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
});
