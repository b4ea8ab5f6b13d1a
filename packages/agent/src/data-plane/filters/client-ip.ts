import type { IncomingMessage } from 'node:http';
import { isIP, type BlockList } from 'node:net';

/**
 * The client address the edge filters (IPAccess, RateLimit) judge: the socket peer, unless
 * that peer is a trusted proxy; then X-Forwarded-For is walked from the right, skipping
 * trusted hops, and the first untrusted address is the client (nginx real_ip_recursive). An
 * entry that is not an IP address stops the walk at the hop before it: whoever wrote it is
 * not trusted to have written the rest. `peer` is http-proxy's clientAddress(req).
 */
export function filterClientAddress(req: IncomingMessage, peer: string, trusted: BlockList | undefined): string {
  if (trusted === undefined || peer === '' || !isTrusted(trusted, peer)) return peer;
  const xff = req.headers['x-forwarded-for'];
  if (typeof xff !== 'string') return peer;
  let client = peer;
  let end = xff.length;
  while (end > 0) {
    const comma = xff.lastIndexOf(',', end - 1);
    const hop = unmap(xff.slice(comma + 1, end).trim());
    if (isIP(hop) === 0) return client;
    client = hop;
    if (!isTrusted(trusted, hop)) return hop;
    end = comma < 0 ? 0 : comma;
  }
  return client;
}

function isTrusted(list: BlockList, address: string): boolean {
  return list.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
}

function unmap(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
