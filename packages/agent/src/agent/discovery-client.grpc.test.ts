// The discovery client over real grpc-js sockets on loopback, against a scripted fake
// controller written here: a unit test of the client's state machine on the wire, not of the
// controller (cross-process tests with the real controller live in agent-process.test.ts).
import { status } from '@grpc/grpc-js';
import { DiscoveryResponse, ProtocolVersion, ResourceType } from '@sluice/proto';
import { freePort } from '@sluice/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { DiscoveryClient } from './discovery-client.js';
import { captureLogger } from './test-support/capture-logger.js';
import { fakeController, until, type Call } from './test-support/fake-controller.js';
import { MemoryDataPlane } from './test-support/memory-data-plane.js';
import { listener } from './test-support/resources.js';

const NODE = { id: 'edge-1', labels: {}, version: '0.1.0', capabilities: [], protocolVersion: ProtocolVersion.PROTOCOL_VERSION_V1 };
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('DiscoveryClient over grpc-js', () => {
  it('skips a dead controller address, applies the first response and ACKs it', async () => {
    const controller = await fakeController((call) => {
      call.write(DiscoveryResponse.fromPartial({ nonce: 'n1', revision: 5, snapshotVersion: 's', resources: [listener('default/web')] }));
    });
    cleanups.push(controller.stop);
    const dead = `127.0.0.1:${await freePort()}`;
    const dataPlane = new MemoryDataPlane();
    const { logger } = captureLogger();
    const client = new DiscoveryClient({ controllers: [dead, controller.address], node: NODE, dataPlane, logger, timing: { initialBackoffMs: 20 } });
    cleanups.push(() => client.stop());
    client.start();

    await until(() => controller.requests.length === 2);
    expect(controller.requests[0]).toMatchObject({ node: NODE, held: [], responseNonce: '' });
    expect(controller.requests[1]).toEqual({ held: [], responseNonce: 'n1', errors: [] });
    expect(dataPlane.resources().map((r) => r.name)).toEqual(['default/web']);
    expect(client.status()).toMatchObject({ connected: true, address: controller.address });
  });

  it('logs the controller refusal with its message', async () => {
    const details = 'agent speaks protocol version 2; this controller speaks 1: upgrade the controller';
    const controller = await fakeController((call) => call.emit('error', { code: status.FAILED_PRECONDITION, details }));
    cleanups.push(controller.stop);
    const { logger, entries } = captureLogger();
    const client = new DiscoveryClient({ controllers: [controller.address], node: NODE, dataPlane: new MemoryDataPlane(), logger });
    cleanups.push(() => client.stop());
    client.start();

    await until(() => entries.some((e) => e.level === 'error'));
    expect(entries.find((e) => e.level === 'error')).toMatchObject({ message: 'controller refused this agent', code: 'FAILED_PRECONDITION', error: details });
    expect(client.status()).toMatchObject({ connected: false, lastError: `FAILED_PRECONDITION: ${details}` });
  });

  it('keeps its configuration while the controller is down and resumes with what it holds', async () => {
    let streams = 0;
    const script = (call: Call) => {
      streams += 1;
      if (streams === 1) call.write(DiscoveryResponse.fromPartial({ nonce: 'n1', resources: [listener('default/web', 'v9')] }));
      else call.write(DiscoveryResponse.fromPartial({ nonce: 'n2' }));
    };
    const first = await fakeController(script);
    const dataPlane = new MemoryDataPlane();
    const { logger } = captureLogger();
    const client = new DiscoveryClient({ controllers: [first.address], node: NODE, dataPlane, logger, timing: { initialBackoffMs: 20, maxBackoffMs: 50 } });
    cleanups.push(() => client.stop());
    client.start();
    await until(() => first.requests.length === 2);

    first.stop();
    await until(() => !client.status().connected);
    expect(dataPlane.resources().map((r) => r.name)).toEqual(['default/web']);

    const second = await fakeController(script, first.port);
    cleanups.push(second.stop);
    await until(() => second.requests.length === 2);
    expect(second.requests[0]!.held).toEqual([{ key: { type: ResourceType.RESOURCE_TYPE_LISTENER, name: 'default/web' }, version: 'v9' }]);
    expect(second.requests[1]).toMatchObject({ responseNonce: 'n2', errors: [] });
  });
});
