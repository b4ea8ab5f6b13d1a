import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeProxyHeader, parseProxyHeader, readProxyHeader, V2_SIGNATURE, type ProxyInfo } from './proxy-protocol.js';

/** A loopback server whose every connection is read with readProxyHeader; yields each outcome. */
async function withHeaderServer<T>(
  timeoutMs: number,
  body: (port: number, next: () => Promise<{ socket: Socket; result: ProxyInfo | Error }>) => Promise<T>,
): Promise<T> {
  const outcomes: { socket: Socket; result: ProxyInfo | Error }[] = [];
  const waiters: ((o: { socket: Socket; result: ProxyInfo | Error }) => void)[] = [];
  const server: Server = createServer((socket) => {
    readProxyHeader(socket, timeoutMs).then(
      (info) => deliver({ socket, result: info }),
      (err: unknown) => deliver({ socket, result: err as Error }),
    );
  });
  const deliver = (o: { socket: Socket; result: ProxyInfo | Error }) => {
    const w = waiters.shift();
    if (w) w(o);
    else outcomes.push(o);
  };
  const next = () => new Promise<{ socket: Socket; result: ProxyInfo | Error }>((resolve) => {
    const o = outcomes.shift();
    if (o) resolve(o);
    else waiters.push(resolve);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    return await body((server.address() as AddressInfo).port, next);
  } finally {
    server.close();
  }
}

async function readAll(socket: Socket): Promise<string> {
  let out = '';
  socket.setEncoding('latin1');
  for await (const chunk of socket) out += chunk as string;
  return out;
}

describe('parseProxyHeader', () => {
  it('parses v1 TCP4, TCP6 and UNKNOWN and reports the header length', () => {
    const v4 = Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /');
    expect(parseProxyHeader(v4)).toEqual({
      info: { version: 1, local: false, transport: 'tcp', source: { address: '192.0.2.1', port: 56324 }, destination: { address: '198.51.100.2', port: 443 } },
      length: v4.indexOf('\n') + 1,
    });
    const v6 = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 ::1 1 65535\r\n'));
    expect(v6).toMatchObject({ info: { source: { address: '2001:db8::1', port: 1 }, destination: { address: '::1', port: 65535 } } });
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 whatever\r\n'))).toMatchObject({ info: { version: 1, source: null }, length: 32 });
  });

  it('says incomplete for every strict prefix of a valid header', () => {
    for (const header of [encodeProxyHeader(1, { address: '10.0.0.1', port: 1 }, { address: '10.0.0.2', port: 2 }), encodeProxyHeader(2, { address: '2001:db8::5', port: 1 }, { address: '::1', port: 2 })]) {
      for (let n = 0; n < header.length; n++) expect(parseProxyHeader(header.subarray(0, n))).toBe('incomplete');
      expect(parseProxyHeader(header)).toMatchObject({ length: header.length });
    }
  });

  it('rejects bad v1 headers with a message naming the fault', () => {
    const cases: [string, RegExp][] = [
      ['GET / HTTP/1.1\r\n', /no header/],
      ['PROXZ', /no header/],
      ['PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n', /TCP4, TCP6 or UNKNOWN/],
      ['PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n', /must be "PROXY/],
      ['PROXY TCP4 ::1 1.2.3.4 1 2\r\n', /source address "::1" is not IPv4/],
      ['PROXY TCP6 ::1 1.2.3.4 1 2\r\n', /destination address "1.2.3.4" is not IPv6/],
      ['PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n', /source port "01"/],
      ['PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n', /destination port "65536"/],
      ['PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n', /not terminated by CRLF/],
      [`PROXY UNKNOWN ${'x'.repeat(100)}`, /longer than 107 bytes/],
    ];
    for (const [text, message] of cases) expect(() => parseProxyHeader(Buffer.from(text)), text).toThrow(message);
  });

  it('parses v2 LOCAL, PROXY TCP4/UDP6 and skips TLVs', () => {
    const local = Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x11, 0x00, 0x0c]), Buffer.alloc(12, 7)]);
    expect(parseProxyHeader(local)).toEqual({ info: { version: 2, local: true, transport: null, source: null, destination: null }, length: 28 });

    const withTlv = encodeProxyHeader(2, { address: '192.0.2.1', port: 1000 }, { address: '192.0.2.2', port: 2000 });
    const tlv = Buffer.from([0x04, 0x00, 0x03, 1, 2, 3]); // PP2_TYPE_NOOP, 3 bytes
    const header = Buffer.concat([withTlv, tlv]);
    header.writeUInt16BE(withTlv.length - 16 + tlv.length, 14);
    expect(parseProxyHeader(Buffer.concat([header, Buffer.from('rest')]))).toEqual({
      info: { version: 2, local: false, transport: 'tcp', source: { address: '192.0.2.1', port: 1000 }, destination: { address: '192.0.2.2', port: 2000 } },
      length: header.length,
    });

    const udp6 = encodeProxyHeader(2, { address: '2001:db8:0:0:1:0:0:1', port: 53 }, { address: 'fe80::1:2', port: 5353 }, 'udp');
    expect(parseProxyHeader(udp6)).toMatchObject({ info: { transport: 'udp', source: { address: '2001:db8::1:0:0:1', port: 53 }, destination: { address: 'fe80::1:2', port: 5353 } } });
  });

  it('reads v2 AF_UNSPEC and AF_UNIX as "no addresses"', () => {
    const unspec = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x00, 0x00, 0x00])]);
    expect(parseProxyHeader(unspec)).toMatchObject({ info: { local: false, source: null }, length: 16 });
    const unix = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x31, 0x00, 216]), Buffer.alloc(216)]);
    expect(parseProxyHeader(unix)).toMatchObject({ info: { source: null }, length: 232 });
  });

  it('rejects bad v2 headers', () => {
    const h = (verCmd: number, fam: number, len: number) => Buffer.concat([V2_SIGNATURE, Buffer.from([verCmd, fam, len >> 8, len & 0xff])]);
    expect(() => parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b]))).toThrow(/signature/);
    expect(() => parseProxyHeader(h(0x11, 0x11, 12))).toThrow(/version must be 2/);
    expect(() => parseProxyHeader(h(0x22, 0x11, 12))).toThrow(/command/);
    expect(() => parseProxyHeader(h(0x21, 0x41, 12))).toThrow(/family 4/);
    expect(() => parseProxyHeader(h(0x21, 0x13, 12))).toThrow(/transport protocol 3/);
    expect(() => parseProxyHeader(h(0x21, 0x21, 12))).toThrow(/shorter than its addresses \(36/);
  });
});

describe('encodeProxyHeader', () => {
  it('writes v1 lines, mapping a dual-stack IPv4 peer back to IPv4', () => {
    expect(encodeProxyHeader(1, { address: '::ffff:127.0.0.1', port: 5000 }, { address: '127.0.0.2', port: 80 }).toString()).toBe('PROXY TCP4 127.0.0.1 127.0.0.2 5000 80\r\n');
    expect(encodeProxyHeader(1, { address: '::1', port: 5000 }, { address: '127.0.0.2', port: 80 }).toString()).toBe('PROXY TCP6 ::1 ::ffff:127.0.0.2 5000 80\r\n');
    expect(encodeProxyHeader(1, { address: '', port: 0 }, { address: '127.0.0.2', port: 80 }).toString()).toBe('PROXY UNKNOWN\r\n');
  });

  it('round-trips v2 through the parser, including mixed families and IPv4-embedded IPv6', () => {
    const src = { address: '10.1.2.3', port: 40000 };
    const dst = { address: '::ffff:10.9.9.9', port: 443 };
    expect(parseProxyHeader(encodeProxyHeader(2, src, dst))).toMatchObject({ info: { source: src, destination: { address: '10.9.9.9', port: 443 } }, length: 28 });
    const mixed = parseProxyHeader(encodeProxyHeader(2, { address: '2001:db8::7', port: 1 }, { address: '10.9.9.9', port: 2 }));
    expect(mixed).toMatchObject({ info: { source: { address: '2001:db8::7' }, destination: { address: '::ffff:a09:909' } }, length: 52 });
    expect(parseProxyHeader(encodeProxyHeader(2, { address: 'nope', port: 1 }, dst))).toMatchObject({ info: { local: false, source: null }, length: 16 });
  });
});

describe('readProxyHeader', () => {
  it('consumes exactly the header, byte by byte, and leaves the rest readable', async () => {
    await withHeaderServer(5_000, async (port, next) => {
      const client = connect(port, '127.0.0.1');
      const header = encodeProxyHeader(2, { address: '203.0.113.9', port: 1234 }, { address: '127.0.0.1', port });
      // One byte per write, with a round trip between, so the server sees many partial reads.
      for (const byte of Buffer.concat([header, Buffer.from('hello')])) {
        await new Promise<void>((resolve) => client.write(Buffer.from([byte]), () => resolve()));
      }
      client.end(' world');
      const { socket, result } = await next();
      expect(result).toMatchObject({ version: 2, source: { address: '203.0.113.9', port: 1234 } });
      expect(await readAll(socket)).toBe('hello world');
    });
  });

  it('unshifts what arrived with the header so an http.Server parses the request', async () => {
    const http = createHttpServer((req, res) => res.end(`${req.method} ${req.url}`));
    await withHeaderServer(5_000, async (port, next) => {
      const client = connect(port, '127.0.0.1');
      client.end(Buffer.concat([encodeProxyHeader(1, { address: '198.51.100.1', port: 9 }, { address: '127.0.0.1', port }), Buffer.from('GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n')]));
      const { socket, result } = await next();
      expect(result).toMatchObject({ version: 1, source: { address: '198.51.100.1' } });
      const response = readAll(client);
      http.emit('connection', socket);
      expect(await response).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nGET \/x$/);
    });
    http.close();
  });

  it('closes the connection on a bad header, on a peer close and on a timeout', async () => {
    await withHeaderServer(200, async (port, next) => {
      const bad = connect(port, '127.0.0.1');
      bad.write('GET / HTTP/1.1\r\n\r\n');
      const badOutcome = await next();
      expect(badOutcome.result).toBeInstanceOf(Error);
      expect((badOutcome.result as Error).message).toMatch(/no header/);
      await once(bad, 'close');

      const short = connect(port, '127.0.0.1');
      short.end('PROXY TCP4 1.2');
      expect(((await next()).result as Error).message).toMatch(/closed before it was complete/);

      const silent = connect(port, '127.0.0.1');
      const silentOutcome = await next();
      expect((silentOutcome.result as Error).message).toMatch(/within 200 ms/);
      expect(silentOutcome.socket.destroyed).toBe(true);
      await once(silent, 'close');
    });
  });
});
