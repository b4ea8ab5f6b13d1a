import { BlockList } from 'node:net';
import type { IpAccess } from '@sluice/proto';
import { parseCidr } from '../validate.js';

/**
 * IPAccess: allow and deny lists of CIDRs, matched against the client address (see
 * client-ip.ts). Deny wins; a non-empty allow list makes everything else denied. An unknown
 * address ("") is denied by an allow list, allowed otherwise.
 */
export class CompiledIpAccess {
  private readonly allow: BlockList | undefined;
  private readonly deny: BlockList | undefined;

  constructor(config: IpAccess) {
    this.allow = blockList(config.allow);
    this.deny = blockList(config.deny);
  }

  allows(address: string): boolean {
    if (address === '') return this.allow === undefined;
    const family = address.includes(':') ? 'ipv6' : 'ipv4';
    if (this.deny?.check(address, family)) return false;
    return this.allow === undefined || this.allow.check(address, family);
  }
}

/** undefined for an empty list; entries validate() rejected never get here. */
export function blockList(cidrs: readonly string[]): BlockList | undefined {
  if (cidrs.length === 0) return undefined;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const parsed = parseCidr(cidr);
    if (parsed !== undefined) list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  return list;
}
