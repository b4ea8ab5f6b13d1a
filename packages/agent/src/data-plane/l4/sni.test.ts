import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { MAX_CLIENT_HELLO_BYTES, parseClientHelloSni, SniTable } from './sni.js';

/** The first flight of a real Node TLS client (`servername` undefined: no SNI sent). */
async function clientHello(servername: string | undefined): Promise<Buffer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const accepted = once(server, 'connection');
    const client = tlsConnect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', servername: servername ?? '', rejectUnauthorized: false });
    client.on('error', () => undefined);
    const [socket] = (await accepted) as [Socket];
    let hello = Buffer.alloc(0);
    while (parseClientHelloSni(hello) === 'incomplete') {
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      hello = Buffer.concat([hello, chunk]);
    }
    client.destroy();
    socket.destroy();
    return hello;
  } finally {
    server.close();
  }
}

/** The same handshake bytes re-framed as records of at most `size` bytes each. */
function reframe(hello: Buffer, size: number): Buffer {
  const body = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const part = body.subarray(i, i + size);
    const header = Buffer.from([22, 3, 1, 0, 0]);
    header.writeUInt16BE(part.length, 3);
    out.push(header, part);
  }
  return Buffer.concat(out);
}

describe('parseClientHelloSni', () => {
  it('reads the server name of a real ClientHello, lower-cased, without consuming it', async () => {
    const hello = await clientHello('Shop.Example.com');
    expect(parseClientHelloSni(hello)).toEqual({ value: 'shop.example.com', consumed: 0 });
    for (let n = 0; n < hello.length; n++) expect(parseClientHelloSni(hello.subarray(0, n))).toBe('incomplete');
  });

  it('gives "" for a ClientHello without SNI (an IP-address connect)', async () => {
    const hello = await clientHello(undefined);
    expect(parseClientHelloSni(hello)).toEqual({ value: '', consumed: 0 });
  });

  it('reassembles a ClientHello split over several records', async () => {
    const hello = await clientHello('a.example');
    const split = reframe(hello, 3); // even the 4-byte handshake header spans two records
    expect(parseClientHelloSni(split)).toEqual({ value: 'a.example', consumed: 0 });
    expect(parseClientHelloSni(split.subarray(0, split.length - 1))).toBe('incomplete');
  });

  it('rejects what is not a ClientHello, and one longer than the bound', () => {
    expect(() => parseClientHelloSni(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(/not a TLS handshake record/);
    expect(() => parseClientHelloSni(Buffer.from([22, 2, 0, 0, 4, 1, 0, 0, 0]))).toThrow(/bad version/);
    expect(() => parseClientHelloSni(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0]))).toThrow(/not a ClientHello/);
    const huge = Buffer.from([22, 3, 1, 0x40, 0x00, 1, 0x01, 0x00, 0x00]); // claims a 64 KiB hello
    expect(() => parseClientHelloSni(huge)).toThrow(new RegExp(`longer than ${MAX_CLIENT_HELLO_BYTES}`));
    // A hello whose claimed extensions run past its end.
    const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0, 0, 2, 0x13, 0x01, 1, 0, 0, 50])]);
    const record = Buffer.concat([Buffer.from([22, 3, 1, 0, body.length + 4, 1, 0, 0, body.length]), body]);
    expect(() => parseClientHelloSni(record)).toThrow(/truncated in extensions/);
  });
});

describe('SniTable', () => {
  it('prefers an exact name, then the longest wildcard, then the catch-all', () => {
    const table = new SniTable([
      { hostnames: ['*.example.com'], route: 'wild' },
      { hostnames: ['*.api.example.com'], route: 'api-wild' },
      { hostnames: ['shop.example.com', 'SHOP2.example.com.'], route: 'shop' },
      { hostnames: [], route: 'default' },
    ]);
    expect(table.match('shop.example.com')).toBe('shop');
    expect(table.match('shop2.example.com')).toBe('shop');
    expect(table.match('v1.api.example.com')).toBe('api-wild');
    expect(table.match('a.b.example.com')).toBe('wild');
    expect(table.match('example.com')).toBe('default');
    expect(table.match('')).toBe('default');
    expect(new SniTable([{ hostnames: ['a.example'], route: 1 }]).match('b.example')).toBeUndefined();
  });
});
