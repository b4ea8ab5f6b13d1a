import { status } from '@grpc/grpc-js';
import { DiscoveryResponse, ProtocolVersion, ResourceType, type DiscoveryRequest, type Node } from '@sluice/proto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DiscoveryClient, type AppliedEvent, type DiscoveryClientOptions, type StreamHandlers } from './discovery-client.js';
import { captureLogger } from './test-support/capture-logger.js';
import { MemoryDataPlane } from './test-support/memory-data-plane.js';
import { cluster, listener } from './test-support/resources.js';

const NODE: Node = { id: 'edge-1', labels: { zone: 'a' }, version: '0.1.0', capabilities: ['http1'], protocolVersion: ProtocolVersion.PROTOCOL_VERSION_V1 };

/** One stream as the fake controller sees it. */
class FakeStream {
  readonly sent: DiscoveryRequest[] = [];
  cancelled = false;
  constructor(
    readonly address: string,
    private readonly handlers: StreamHandlers,
  ) {}
  send(request: DiscoveryRequest): void {
    this.sent.push(request);
  }
  cancel(): void {
    this.cancelled = true;
  }
  respond(response: Partial<DiscoveryResponse>): void {
    this.handlers.response(DiscoveryResponse.fromPartial(response));
  }
  close(code: number, details = 'gone'): void {
    this.handlers.closed({ code, details });
  }
}

function setup(overrides: Partial<DiscoveryClientOptions> = {}) {
  const streams: FakeStream[] = [];
  const applied: AppliedEvent[] = [];
  const dataPlane = new MemoryDataPlane();
  const { logger, entries } = captureLogger();
  const client = new DiscoveryClient({
    controllers: ['a:1', 'b:2'],
    node: NODE,
    dataPlane,
    logger,
    random: () => 0.5, // no jitter
    openStream: (address, handlers) => {
      const stream = new FakeStream(address, handlers);
      streams.push(stream);
      return stream;
    },
    onApplied: (event) => {
      applied.push(event);
    },
    ...overrides,
  });
  const last = () => streams[streams.length - 1]!;
  return { client, streams, last, applied, dataPlane, entries };
}

/** Lets queued promise callbacks (apply, ACK) run. */
const settle = () => vi.advanceTimersByTimeAsync(0);

describe('DiscoveryClient', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('opens with the node and what the data plane holds, and no nonce', async () => {
    const { client, last, dataPlane } = setup();
    await dataPlane.apply({ resources: [listener('default/web', 'v7')], removed: [] });
    client.start();
    expect(last().address).toBe('a:1');
    expect(last().sent).toEqual([
      {
        node: NODE,
        held: [{ key: { type: ResourceType.RESOURCE_TYPE_LISTENER, name: 'default/web' }, version: 'v7' }],
        responseNonce: '',
        errors: [],
      },
    ]);
    await client.stop();
  });

  it('applies each response, then ACKs it with its nonce', async () => {
    const { client, last, dataPlane, applied } = setup();
    client.start();
    last().respond({ nonce: 'n1', revision: 12, snapshotVersion: 's1', resources: [cluster('default/api'), listener('default/web')] });
    await settle();
    expect(dataPlane.resources().map((r) => r.name)).toEqual(['default/api', 'default/web']);
    expect(last().sent[1]).toEqual({ held: [], responseNonce: 'n1', errors: [] });
    expect(applied).toMatchObject([{ address: 'a:1', revision: 12, snapshotVersion: 's1', errors: [] }]);
    expect(client.status()).toEqual({ connected: true, address: 'a:1', lastError: undefined });

    last().respond({ nonce: 'n2', revision: 13, removed: [{ type: ResourceType.RESOURCE_TYPE_LISTENER, name: 'default/web' }] });
    await settle();
    expect(dataPlane.resources().map((r) => r.name)).toEqual(['default/api']);
    expect(last().sent[2]).toEqual({ held: [], responseNonce: 'n2', errors: [] });
    await client.stop();
  });

  it('NACKs with the errors the data plane reports, naming each rejected resource', async () => {
    const { client, last, dataPlane, entries } = setup();
    dataPlane.reject = (r) => (r.name === 'default/bad' ? 'port 80 is in use' : undefined);
    client.start();
    last().respond({ nonce: 'n1', resources: [listener('default/ok'), listener('default/bad', 'v3')] });
    await settle();
    expect(last().sent[1]).toEqual({
      held: [],
      responseNonce: 'n1',
      errors: [{ key: { type: ResourceType.RESOURCE_TYPE_LISTENER, name: 'default/bad' }, version: 'v3', message: 'port 80 is in use', sources: [] }],
    });
    expect(entries.find((e) => e.message === 'resource rejected')).toMatchObject({ name: 'default/bad', error: 'port 80 is in use' });
    await client.stop();
  });

  it('NACKs every resource of a response when the data plane throws, and keeps the stream', async () => {
    const { client, last, dataPlane } = setup();
    dataPlane.apply = () => Promise.reject(new Error('boom'));
    client.start();
    last().respond({ nonce: 'n1', resources: [listener('default/web')] });
    await settle();
    expect(last().sent[1]!.errors).toMatchObject([{ key: { name: 'default/web' }, message: 'agent failed to apply: boom' }]);
    expect(last().cancelled).toBe(false);
    await client.stop();
  });

  it('applies responses one at a time, in order', async () => {
    const { client, last, dataPlane } = setup();
    const order: string[] = [];
    let release!: () => void;
    const apply = dataPlane.apply.bind(dataPlane);
    dataPlane.apply = async (update) => {
      order.push(`start ${update.resources[0]!.name}`);
      if (update.resources[0]!.name === 'first') await new Promise<void>((resolve) => (release = resolve));
      order.push(`end ${update.resources[0]!.name}`);
      return apply(update);
    };
    client.start();
    last().respond({ nonce: 'n1', resources: [listener('first')] });
    last().respond({ nonce: 'n2', resources: [listener('second')] });
    await settle();
    expect(order).toEqual(['start first']);
    release();
    await settle();
    expect(order).toEqual(['start first', 'end first', 'start second', 'end second']);
    expect(last().sent.map((r) => r.responseNonce)).toEqual(['', 'n1', 'n2']);
    await client.stop();
  });

  it('reconnects on the next address with exponential backoff, and resumes from what it holds', async () => {
    const { client, streams, last, entries } = setup();
    client.start();
    last().respond({ nonce: 'n1', resources: [listener('default/web', 'v2')] });
    await settle();
    last().close(status.UNAVAILABLE, 'connection reset');
    expect(client.status()).toEqual({ connected: false, address: undefined, lastError: 'UNAVAILABLE: connection reset' });
    expect(entries.find((e) => e.message.startsWith('discovery stream ended'))).toMatchObject({ address: 'a:1', retryInMs: 250 });

    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      const before = streams.length;
      let waited = 0;
      while (streams.length === before) {
        await vi.advanceTimersByTimeAsync(50);
        waited += 50;
      }
      delays.push(waited);
      if (i < 6) last().close(status.UNAVAILABLE, 'connection refused');
    }
    // The first retry follows the dropped stream; then 0.5 s doubling, capped at 5 s.
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
    expect(streams.map((s) => s.address)).toEqual(['a:1', 'b:2', 'a:1', 'b:2', 'a:1', 'b:2', 'a:1', 'b:2']);
    // One warning for the outage, not one per attempt.
    expect(entries.filter((e) => e.level === 'warn')).toHaveLength(1);
    expect(last().sent[0]!.held).toEqual([{ key: { type: ResourceType.RESOURCE_TYPE_LISTENER, name: 'default/web' }, version: 'v2' }]);

    // An answer resets the backoff.
    last().respond({ nonce: 'n2' });
    await settle();
    last().close(status.UNAVAILABLE, 'gone again');
    const before = streams.length;
    await vi.advanceTimersByTimeAsync(249);
    expect(streams.length).toBe(before);
    await vi.advanceTimersByTimeAsync(1);
    expect(streams.length).toBe(before + 1);
    await client.stop();
  });

  it('asks diagnose why once per outage and logs its reason as an error', async () => {
    const diagnose = vi.fn((address: string) => Promise.resolve(address === 'a:1' ? 'the controller requires a client certificate' : undefined));
    const { client, streams, last, entries } = setup({ diagnose });
    client.start();
    last().close(status.UNAVAILABLE, 'Failed to connect');
    await settle();
    expect(diagnose.mock.calls).toEqual([['a:1']]);
    expect(entries.filter((e) => e.level === 'error')).toMatchObject([
      { message: 'cannot connect to the controller', address: 'a:1', error: 'the controller requires a client certificate' },
    ]);
    // Further failures of the same outage are not diagnosed again; an answer ends the outage.
    while (streams.length < 3) {
      await vi.advanceTimersByTimeAsync(50);
      if (streams.length < 3) last().close(status.UNAVAILABLE, 'Failed to connect');
    }
    expect(diagnose).toHaveBeenCalledTimes(1);
    last().respond({ nonce: 'n1' });
    await settle();
    last().close(status.UNAVAILABLE, 'Failed to connect');
    await vi.advanceTimersByTimeAsync(250);
    last().close(status.UNAVAILABLE, 'Failed to connect');
    await settle();
    expect(diagnose).toHaveBeenCalledTimes(2);
    await client.stop();
  });

  it('spreads retry delays by ±50 %', async () => {
    for (const [random, expected] of [
      [0, 125],
      [1, 375],
    ] as const) {
      const { client, streams, last } = setup({ random: () => random });
      client.start();
      last().close(status.UNAVAILABLE);
      await vi.advanceTimersByTimeAsync(expected - 1);
      expect(streams).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(streams).toHaveLength(2);
      await client.stop();
    }
  });

  it.each([
    [status.FAILED_PRECONDITION, 'agent speaks protocol version 2; this controller speaks 1: upgrade the controller'],
    [status.INVALID_ARGUMENT, 'node id "Edge_1" is not a DNS-1123 subdomain'],
  ])('logs a refusal (code %i) as an error with the controller message, and retries slowly', async (code, details) => {
    const { client, streams, last, entries } = setup();
    client.start();
    last().close(code, details);
    const error = entries.find((e) => e.level === 'error');
    expect(error).toMatchObject({ message: 'controller refused this agent', address: 'a:1', error: details, retryInMs: 30_000 });
    expect(client.status().lastError).toContain(details);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(streams).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(streams).toHaveLength(2);
    await client.stop();
  });

  it('takes a stream replaced by another agent with the same id as an error, and retries slowly', async () => {
    const { client, streams, last, entries } = setup();
    client.start();
    last().respond({ nonce: 'n1' });
    await settle();
    last().close(status.ABORTED, 'replaced by a newer stream from the same agent');
    expect(entries.find((e) => e.level === 'error')).toMatchObject({ message: expect.stringContaining('same --id'), id: 'edge-1', code: 'ABORTED' });
    await vi.advanceTimersByTimeAsync(29_999);
    expect(streams).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(streams).toHaveLength(2);
    await client.stop();
  });

  it('ignores a stream it has given up on', async () => {
    const { client, streams, dataPlane } = setup();
    client.start();
    const old = streams[0]!;
    old.close(status.UNAVAILABLE);
    await vi.advanceTimersByTimeAsync(250);
    old.respond({ nonce: 'late', resources: [listener('stale')] });
    old.close(status.UNAVAILABLE);
    await settle();
    expect(dataPlane.updates).toEqual([]);
    expect(streams).toHaveLength(2);
    await client.stop();
  });

  it('does not open a new stream until an apply in progress is done', async () => {
    const { client, streams, last, dataPlane } = setup();
    let release!: () => void;
    const apply = dataPlane.apply.bind(dataPlane);
    dataPlane.apply = async (update) => {
      await new Promise<void>((resolve) => (release = resolve));
      return apply(update);
    };
    client.start();
    last().respond({ nonce: 'n1', resources: [listener('default/web')] });
    await settle();
    last().close(status.UNAVAILABLE);
    await vi.advanceTimersByTimeAsync(1000);
    expect(streams).toHaveLength(1);
    release();
    await settle();
    expect(streams).toHaveLength(2);
    expect(last().sent[0]!.held).toHaveLength(1);
    await client.stop();
  });

  it('stop cancels the stream and stops reconnecting', async () => {
    const { client, streams, last } = setup();
    client.start();
    await client.stop();
    expect(last().cancelled).toBe(true);
    last().close(status.CANCELLED);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(streams).toHaveLength(1);
    expect(client.status().connected).toBe(false);
  });
});
