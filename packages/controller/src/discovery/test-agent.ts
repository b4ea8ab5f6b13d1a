import { Client, credentials, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import {
  DiscoveryRequest,
  DiscoveryResponse,
  DiscoveryServiceClient,
  DiscoveryServiceService,
  Node,
  ProtocolVersion,
  type HeldResource,
  type ResourceError,
} from '@sluice/proto';

/**
 * A minimal agent for tests: opens the discovery stream with grpc-js, queues responses and
 * answers when told to. The real `sluice agent` speaks the same protocol.
 */
export class TestAgent {
  private readonly queue: DiscoveryResponse[] = [];
  private waiters: (() => void)[] = [];
  readonly status: Promise<StatusObject>;

  private constructor(
    private readonly client: Client,
    private readonly call: ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> | ClientDuplexStream<Buffer, DiscoveryResponse>,
  ) {
    call.on('data', (response: DiscoveryResponse) => {
      this.queue.push(response);
      this.wake();
    });
    call.on('error', () => undefined); // the status promise carries it
    this.status = new Promise((resolve) =>
      call.on('status', (s: StatusObject) => {
        resolve(s);
        this.wake();
      }),
    );
  }

  /** Connects and sends the first request: node and held versions. */
  static connect(
    address: string,
    node: Partial<Node> & { id: string },
    held: HeldResource[] = [],
  ): TestAgent {
    const client = new DiscoveryServiceClient(address, credentials.createInsecure());
    const call = client.stream();
    const agent = new TestAgent(client, call);
    call.write(DiscoveryRequest.fromPartial({ node: { protocolVersion: ProtocolVersion.PROTOCOL_VERSION_V1, ...node }, held }));
    return agent;
  }

  /** Connects and sends a first request with a raw `node.protocol_version` number. */
  static connectSpeaking(address: string, id: string, protocolVersion: number): TestAgent {
    const client = new Client(address, credentials.createInsecure());
    const call = client.makeBidiStreamRequest(
      DiscoveryServiceService.stream.path,
      (b: Buffer) => b,
      (b: Buffer) => DiscoveryResponse.decode(b),
    );
    const agent = new TestAgent(client, call);
    // Protobuf: the last value of a repeated scalar field wins, so this overrides V1.
    const node = Buffer.concat([Buffer.from(Node.encode(Node.fromPartial({ id })).finish()), Buffer.from([0x28, protocolVersion])]);
    call.write(Buffer.concat([Buffer.from([0x0a, node.length]), node]));
    return agent;
  }

  /** The next response, or throws if none arrives in time or the stream ends first. */
  async next(timeoutMs = 2000): Promise<DiscoveryResponse> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no response from the controller in time');
      const ended = await Promise.race([
        new Promise<boolean>((resolve) => {
          this.waiters.push(() => resolve(false));
          setTimeout(() => resolve(false), left);
        }),
        this.status.then(() => this.queue.length === 0),
      ]);
      if (ended) throw new Error('stream ended before a response');
    }
    return this.queue.shift()!;
  }

  /** Resolves true if no response arrives within `ms`. */
  async quiet(ms = 150): Promise<boolean> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.queue.length === 0;
  }

  ack(response: DiscoveryResponse): void {
    (this.call as ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>).write(DiscoveryRequest.fromPartial({ responseNonce: response.nonce }));
  }

  nack(response: DiscoveryResponse, errors: Partial<ResourceError>[]): void {
    (this.call as ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>).write(DiscoveryRequest.fromPartial({ responseNonce: response.nonce, errors }));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}
