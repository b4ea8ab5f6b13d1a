import type { Socket } from 'node:net';
import { AgentError } from '../../errors.js';

/** What a prefix parser says about the bytes read so far. */
export type PrefixResult<T> = { readonly value: T; readonly consumed: number } | 'incomplete';

/**
 * Reads from a fresh socket until `parse` accepts a prefix, then hands back the parsed value
 * and unshifts every byte past the `consumed` ones: the stream reads on as if only those had
 * been taken (0 = a peek). `parse` throws on bytes that can never become a valid prefix, and
 * must bound what it asks for (it decides when a prefix is too long).
 *
 * On a parse error, the peer closing first, or no complete prefix within `timeoutMs`, the
 * socket is destroyed and the promise rejects with AgentError('bad-request') prefixed `what`.
 */
export function readPrefix<T>(socket: Socket, parse: (buf: Buffer) => PrefixResult<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (err: Error | undefined, value?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      if (err !== undefined) {
        socket.destroy();
        reject(err);
      } else resolve(value as T);
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while (!settled && (chunk = socket.read() as Buffer | null) !== null) {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        let result: PrefixResult<T>;
        try {
          result = parse(buffered);
        } catch (err) {
          finish(err instanceof Error ? err : new AgentError('bad-request', `${what}: ${String(err)}`));
          return;
        }
        if (result === 'incomplete') continue;
        if (result.consumed < buffered.length) socket.unshift(buffered.subarray(result.consumed));
        finish(undefined, result.value);
      }
    };
    const onEnd = (): void => finish(new AgentError('bad-request', `${what}: connection closed before it was complete`));
    const onError = (err: Error): void => finish(new AgentError('bad-request', `${what}: ${err.message}`, { cause: err }));
    const timer = setTimeout(() => finish(new AgentError('bad-request', `${what}: not complete within ${timeoutMs} ms`)), timeoutMs);
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
  });
}
