import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, ControllerProcess, freePort, runSluicectl, startBackend, tempDir, watchUntil, type Backend, type TempDir } from '@sluice/testing';

// The edge defends itself (DESIGN §9), with real processes on loopback: a controller, an
// agent, a backend that counts what reaches it. Malformed and hostile requests are written
// on raw sockets; each must be refused by the agent, with the connection closed, and none
// may reach the backend.

let dir: TempDir;
let controller: ControllerProcess;
let agent: AgentProcess;
let backend: Backend;
let proxyPort: number;

const TRUSTED_PEER = '127.0.0.3';

const config = (port: number, backendPort: number) => `apiVersion: sluice/v1
kind: Listener
metadata: {name: web}
spec:
  port: ${port}
  protocol: HTTP
  trustedProxies: [${TRUSTED_PEER}/32]
  limits:
    maxRequestHeaderBytes: 8192
    maxRequestHeaders: 20
    maxRequestBodyBytes: 1024
    requestHeadersTimeout: 2s
---
apiVersion: sluice/v1
kind: Upstream
metadata: {name: echo}
spec:
  endpoints:
    - {address: 127.0.0.1, port: ${backendPort}}
---
apiVersion: sluice/v1
kind: Route
metadata: {name: echo}
spec:
  parentRefs: [{name: web}]
  rules:
    - backendRefs: [{name: echo}]
`;

interface RawResult {
  /** Everything the agent wrote, latin1. */
  response: string;
  /** The agent closed the connection (we never do, except on our own timeout). */
  closedByPeer: boolean;
}

/**
 * Writes `chunks` on a fresh connection (a function: writes them on its own schedule) and
 * reads until the agent closes it, or `timeoutMs` passes (then closedByPeer is false).
 */
function raw(chunks: string | ((socket: ReturnType<typeof connect>) => void), options: { localAddress?: string; timeoutMs?: number } = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = connect({ port: proxyPort, host: '127.0.0.1', localAddress: options.localAddress });
    let response = '';
    let done = false;
    const finish = (closedByPeer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ response, closedByPeer });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 10_000);
    socket.on('data', (d: Buffer) => (response += d.toString('latin1')));
    socket.on('error', () => finish(true));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      if (typeof chunks === 'string') socket.write(chunks, 'latin1');
      else chunks(socket);
    });
  });
}

/** One well-formed request on its own connection; the backend's echo of what it received. */
async function echo(headers: string, options: { localAddress?: string } = {}): Promise<{ status: number; response: string; seen: Record<string, string> }> {
  const { response } = await raw(`GET /echo HTTP/1.1\r\nHost: shop.test\r\n${headers}Connection: close\r\n\r\n`, options);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
  const body = response.slice(response.indexOf('\r\n\r\n') + 4);
  return { status, response, seen: status === 200 ? (JSON.parse(body) as Record<string, string>) : {} };
}

const statusOf = (r: RawResult) => Number(/^HTTP\/1\.1 (\d{3})/.exec(r.response)?.[1]);

beforeAll(async () => {
  dir = await tempDir();
  backend = await startBackend('echo', (req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify(req.headers);
      // The backend's identity headers, which the agent must not pass on.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), server: 'gunicorn/20.0', 'x-powered-by': 'PHP/5.4' });
      res.end(body);
    });
  });
  proxyPort = await freePort();
  const grpcPort = await freePort();
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, grpcAddr: `127.0.0.1:${grpcPort}` });
  agent = await AgentProcess.start({ controller: controller.grpcAddress, id: 'edge-1', listenAddress: '127.0.0.1' });
  const applied = await runSluicectl(['apply', '-f', '-', '-o', 'json'], { server: controller.url, input: config(proxyPort, backend.port) });
  expect(applied.stderr).toBe('');
  const rev = Math.max(...(JSON.parse(applied.stdout) as { items: { metadata: { resourceVersion: string } }[] }).items.map((o) => Number(o.metadata.resourceVersion)));
  await watchUntil<{ metadata: { name: string }; status?: { connected?: boolean; appliedRevision?: number } }>(
    controller.url,
    'agents',
    (a) => a.metadata.name === 'edge-1' && a.status?.connected === true && (a.status.appliedRevision ?? 0) >= rev,
  );
});

afterAll(async () => {
  await agent?.stop();
  await controller?.stop();
  await backend?.[Symbol.asyncDispose]();
  await dir?.[Symbol.asyncDispose]();
});

describe('request smuggling and malformed requests', () => {
  const post = 'POST /echo HTTP/1.1\r\nHost: shop.test\r\n';
  it.each([
    ['Content-Length and Transfer-Encoding together', `${post}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
    ['two different Content-Lengths', `${post}Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`, 400],
    ['an invalid chunk size', `${post}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, 400],
    ['a chunk extension with a control character', `${post}Transfer-Encoding: chunked\r\n\r\n3;a\x01b\r\nabc\r\n0\r\n\r\n`, 400],
    ['chunk extensions without end (HPE_CHUNK_EXTENSIONS_OVERFLOW)', `${post}Transfer-Encoding: chunked\r\n\r\n3;${'a'.repeat(20_000)}\r\nabc\r\n0\r\n\r\n`, 413],
    ['Transfer-Encoding: chunked, identity', `${post}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 400],
    ['Transfer-Encoding : chunked (space before the colon)', `${post}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400],
    ['Transfer-Encoding: xchunked', `${post}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
    ['bare LF line endings', 'GET /echo HTTP/1.1\nHost: shop.test\n\n', 400],
    ['a bare LF inside the header block', 'GET /echo HTTP/1.1\r\nHost: shop.test\nX-A: b\r\n\r\n', 400],
    ['a NUL in a header value', 'GET /echo HTTP/1.1\r\nHost: shop.test\r\nX-A: a\x00b\r\n\r\n', 400],
    ['a bare CR in the header block', 'GET /echo HTTP/1.1\r\nHost: shop.test\rX-A: b\r\n\r\n', 400],
    ['obsolete line folding', 'GET /echo HTTP/1.1\r\nHost: shop.test\r\nX-A: a\r\n b\r\n\r\n', 400],
  ])('refuses %s, closes the connection, and the backend never sees it', async (_name, request, status) => {
    const before = backend.requests;
    const result = await raw(request);
    expect(statusOf(result)).toBe(status);
    expect(result.response).toMatch(/\r\nserver: sluice\r\n/i);
    expect(result.closedByPeer).toBe(true);
    // A well-formed request afterwards is the only one the backend gets.
    expect((await echo('')).status).toBe(200);
    expect(backend.requests).toBe(before + 1);
  });
});

describe('listener limits', () => {
  it('answers 431 to a header block over maxRequestHeaderBytes', async () => {
    const before = backend.requests;
    const result = await raw(`GET /echo HTTP/1.1\r\nHost: shop.test\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`);
    expect([statusOf(result), result.closedByPeer]).toEqual([431, true]);
    expect(backend.requests).toBe(before);
  });

  it('answers 431 to more headers than maxRequestHeaders instead of dropping the extra ones', async () => {
    const before = backend.requests;
    const many = Array.from({ length: 25 }, (_, i) => `X-H${i}: v\r\n`).join('');
    const result = await raw(`GET /echo HTTP/1.1\r\nHost: shop.test\r\n${many}\r\n`);
    expect([statusOf(result), result.closedByPeer]).toEqual([431, true]);
    expect(backend.requests).toBe(before);
    // Within the limit (Host + 18 + Connection = 20) it goes through whole.
    const fits = Array.from({ length: 18 }, (_, i) => `X-H${i}: v\r\n`).join('');
    const ok = await echo(fits);
    expect(ok.status).toBe(200);
    expect(ok.seen['x-h17']).toBe('v');
  });

  it('answers 408 to a client sending its headers a byte at a time past requestHeadersTimeout', async () => {
    const text = 'GET /echo HTTP/1.1\r\nHost: shop.test\r\nX-Slow: ' + 'a'.repeat(100);
    let timer: NodeJS.Timeout | undefined;
    const result = await raw(
      (socket) => {
        let i = 0;
        timer = setInterval(() => {
          if (i < text.length && !socket.destroyed) socket.write(text[i++] ?? '');
        }, 250);
      },
      { timeoutMs: 20_000 },
    );
    clearInterval(timer);
    expect([statusOf(result), result.closedByPeer]).toEqual([408, true]);
  });

  it('answers 413 to a body over maxRequestBodyBytes, declared or chunked, without the backend', async () => {
    const before = backend.requests;
    const declared = await raw(`POST /echo HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 2000\r\n\r\n${'a'.repeat(2000)}`);
    expect([statusOf(declared), declared.closedByPeer]).toEqual([413, true]);
    expect(backend.requests).toBe(before);
    const expectContinue = await raw(`POST /echo HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n`);
    // The 413 comes instead of "100 Continue": the client is never invited to send the body.
    expect(expectContinue.response).toMatch(/^HTTP\/1\.1 413 /);
    const chunked = await raw(`POST /echo HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${'a'.repeat(2048)}\r\n0\r\n\r\n`);
    // Streamed: the request may have started upstream, but the client gets the 413 and a closed connection.
    expect([statusOf(chunked), chunked.closedByPeer]).toEqual([413, true]);
  });
});

describe('headers', () => {
  it('strips hop-by-hop headers, those named in Connection included', async () => {
    const { status, seen } = await echo('Keep-Alive: timeout=5\r\nTE: trailers\r\nX-Secret: 1\r\nX-Kept: 2\r\nConnection: X-Secret\r\nProxy-Connection: keep-alive\r\n');
    expect(status).toBe(200);
    expect(seen['x-kept']).toBe('2');
    for (const name of ['keep-alive', 'te', 'x-secret', 'proxy-connection']) expect({ name, value: seen[name] }).toEqual({ name, value: undefined });
  });

  it("drops the backend's Server and X-Powered-By", async () => {
    const { status, response } = await echo('');
    expect(status).toBe(200);
    expect(response).not.toMatch(/gunicorn|PHP/);
  });

  it('replaces X-Forwarded-For from an untrusted peer and extends it from a trusted one', async () => {
    const untrusted = await echo('X-Forwarded-For: 6.6.6.6\r\n', { localAddress: '127.0.0.1' });
    expect(untrusted.seen['x-forwarded-for']).toBe('127.0.0.1');
    const trusted = await echo('X-Forwarded-For: 1.2.3.4\r\n', { localAddress: TRUSTED_PEER });
    expect(trusted.seen['x-forwarded-for']).toBe(`1.2.3.4, ${TRUSTED_PEER}`);
  });
});
