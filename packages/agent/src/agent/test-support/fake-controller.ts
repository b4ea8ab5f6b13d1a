import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { DiscoveryServiceService, type DiscoveryRequest, type DiscoveryResponse } from '@sluice/proto';

// A scripted stand-in for the controller's discovery server, for unit tests of the agent's
// client state machine only: cross-process tests run the real controller.

export type Call = ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

export interface FakeController {
  requests: DiscoveryRequest[];
  address: string;
  port: number;
  stop: () => void;
}

/** A gRPC server on 127.0.0.1 whose stream handler the test scripts. */
export async function fakeController(onStream: (call: Call, first: DiscoveryRequest) => void, port = 0): Promise<FakeController> {
  const server = new Server();
  const requests: DiscoveryRequest[] = [];
  server.addService(DiscoveryServiceService, {
    stream: (call: Call) => {
      let first = true;
      call.on('data', (request: DiscoveryRequest) => {
        requests.push(request);
        if (first) onStream(call, request);
        first = false;
      });
      call.on('error', () => undefined);
    },
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (error, actual) => (error ? reject(error) : resolve(actual)));
  });
  return { requests, address: `127.0.0.1:${bound}`, port: bound, stop: () => server.forceShutdown() };
}

export async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

