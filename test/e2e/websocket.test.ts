import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { AgentProcess, ControllerProcess, freePort, runSluicectl, tempDir, watchUntil, webToUpstream, type TempDir } from '@sluice/testing';

// WebSocket through real processes: a controller, one agent, two backends that answer HTTP
// with their names and echo WebSocket messages; configuration applied with sluicectl.

interface WsBackend {
  readonly name: string;
  readonly port: number;
  readonly server: Server;
  readonly wss: WebSocketServer;
}

let dir: TempDir;
let controller: ControllerProcess;
let agent: AgentProcess;
let backends: WsBackend[];
let proxyPort: number;

async function wsBackend(name: string): Promise<WsBackend> {
  const server = createServer((req, res) => {
    req.resume();
    res.end(`${name}\n`);
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`${name}:${(data as Buffer).toString()}`)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { name, port: (server.address() as AddressInfo).port, server, wss };
}

async function apply(yaml: string): Promise<number> {
  const result = await runSluicectl(['apply', '-f', '-', '-o', 'json'], { server: controller.url, input: yaml });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const out = JSON.parse(result.stdout) as { items?: { metadata: { resourceVersion: string } }[]; metadata?: { resourceVersion: string } };
  const objects = out.items ?? [out as { metadata: { resourceVersion: string } }];
  return Math.max(...objects.map((o) => Number(o.metadata.resourceVersion)));
}

async function inSync(rev: number): Promise<void> {
  await watchUntil<{ metadata: { name: string }; status?: { connected?: boolean; appliedRevision?: number } }>(
    controller.url,
    'agents',
    (a) => a.metadata.name === 'ws-agent' && a.status?.connected === true && (a.status.appliedRevision ?? 0) >= rev,
  );
}

async function openWs(path: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${proxyPort}${path}`, { headers: { host: 'chat.example.com' } });
  await once(ws, 'open');
  return ws;
}

async function nextMessage(ws: WebSocket): Promise<string> {
  const [data] = (await once(ws, 'message')) as [Buffer];
  return data.toString();
}

beforeAll(async () => {
  dir = await tempDir();
  backends = await Promise.all(['a', 'b'].map((n) => wsBackend(n)));
  proxyPort = await freePort();
  const grpcPort = await freePort();
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, grpcAddr: `127.0.0.1:${grpcPort}` });
  agent = await AgentProcess.start({ controller: controller.grpcAddress, id: 'ws-agent', listenAddress: '127.0.0.1' });
  await agent.ready();
  const rev = await apply(
    webToUpstream({ port: proxyPort, name: 'chat', endpoints: backends.map((b) => ({ port: b.port })), upstream: '  loadBalancing: {policy: LeastConnections}' }),
  );
  await inSync(rev);
});

afterAll(async () => {
  await agent?.stop();
  await controller?.stop();
  for (const b of backends ?? []) {
    for (const ws of b.wss.clients) ws.terminate();
    b.wss.close();
    b.server.closeAllConnections();
    await new Promise<void>((resolve) => b.server.close(() => resolve()));
  }
  await dir?.[Symbol.asyncDispose]();
});

describe('WebSocket through the agent', () => {
  it('echoes messages both ways and propagates a close from either side', async () => {
    const ws = await openWs('/chat');
    try {
      ws.send('hello');
      const reply = await nextMessage(ws);
      expect(reply).toMatch(/^[ab]:hello$/);
      const holder = backends.find((b) => reply.startsWith(`${b.name}:`)) as WsBackend;
      const [server] = [...holder.wss.clients];
      const serverClosed = once(server as WebSocket, 'close');
      ws.close(4000, 'client done');
      const [code, reason] = (await serverClosed) as [number, Buffer];
      expect([code, reason.toString()]).toEqual([4000, 'client done']);
    } finally {
      ws.terminate();
    }

    const ws2 = await openWs('/chat');
    try {
      ws2.send('ping');
      const reply = await nextMessage(ws2);
      const holder = backends.find((b) => reply.startsWith(`${b.name}:`)) as WsBackend;
      const server = [...holder.wss.clients].at(-1) as WebSocket;
      const clientClosed = once(ws2, 'close');
      server.close(4001, 'server done');
      const [code, reason] = (await clientClosed) as [number, Buffer];
      expect([code, reason.toString()]).toEqual([4001, 'server done']);
    } finally {
      ws2.terminate();
    }
  });

  it('least connections counts the open WebSocket: plain requests go to the other endpoint', async () => {
    const ws = await openWs('/chat');
    try {
      ws.send('who');
      const holder = (await nextMessage(ws)).split(':')[0];
      const other = holder === 'a' ? 'b' : 'a';
      for (let i = 0; i < 6; i++) {
        const res = await fetch(`http://127.0.0.1:${proxyPort}/`);
        expect((await res.text()).trim()).toBe(other);
      }
    } finally {
      ws.close();
    }
  });
});
