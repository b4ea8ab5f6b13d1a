import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

// HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3) and HTTP/1.1 on one cleartext port: the
// first bytes of a connection say which. An HTTP/1 request line can share a prefix with the
// preface ("P" of POST, PUT, PATCH) but never all of it, so bytes are compared as they come.

/** The client connection preface of HTTP/2. */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Reads the first bytes of `socket` until they match or rule out the HTTP/2 preface, then
 * calls `decided` with the bytes read so far (to be handed back to the protocol's parser).
 * A client that sends nothing for `timeoutMs` is disconnected.
 */
export function sniffH2c(socket: Socket, timeoutMs: number, decided: (h2: boolean, head: Buffer) => void): void {
  let head: Buffer | undefined;
  const onData = (chunk: Buffer): void => {
    head = head === undefined ? chunk : Buffer.concat([head, chunk]);
    const n = Math.min(head.length, H2_PREFACE.length);
    const h2 = head.compare(H2_PREFACE, 0, n, 0, n) === 0;
    if (h2 && head.length < H2_PREFACE.length) return;
    socket.off('data', onData);
    socket.off('error', onError);
    socket.setTimeout(0);
    socket.off('timeout', onTimeout);
    socket.pause();
    decided(h2, head);
  };
  const onError = (): void => {
    socket.destroy();
  };
  const onTimeout = (): void => {
    socket.destroy();
  };
  socket.on('error', onError);
  socket.setTimeout(timeoutMs, onTimeout);
  socket.on('data', onData);
}

/**
 * `socket` as a stream that first yields `head`. Node's HTTP/2 session reads a net.Socket's
 * handle directly, past anything unshifted into it, so bytes already read must come through
 * a JS stream instead (Node wraps it; that costs some throughput on h2c connections only).
 */
export function withHead(socket: Socket, head: Buffer): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  stream.push(head);
  socket.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('close', () => stream.destroy());
  socket.on('error', (err) => stream.destroy(err));
  return stream;
}
