import { isIP } from 'node:net';
import { Protocol, type Listener } from '@sluice/proto';
import { tlsSettingsProblem } from '../tls-contexts.js';

// The agent's checks of TCP (TLS-terminating too), UDP and TLS passthrough listeners (validate.ts calls in).
// Messages name the field, as the rest of validate.ts does.

const HOSTNAME = /^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.?$/i;

const NAMES: Partial<Record<Protocol, string>> = {
  [Protocol.PROTOCOL_TCP]: 'TCP',
  [Protocol.PROTOCOL_UDP]: 'UDP',
  [Protocol.PROTOCOL_TLS_PASSTHROUGH]: 'TLS passthrough',
};

export function validateL4Listener(listener: Listener, allowEphemeralPorts: boolean): string | undefined {
  const kind = NAMES[listener.protocol] ?? 'L4';
  const port = listener.port;
  if (!(Number.isInteger(port) && port >= 1 && port <= 65535) && !(allowEphemeralPorts && port === 0)) return `port: must be 1-65535, got ${port}`;
  if (listener.address !== '' && isIP(listener.address) === 0) return `address: "${listener.address}" is not an IP address`;
  // TCP with tls = TLS terminated by the agent (the translator's TLS + Terminate).
  if (listener.tls !== undefined) {
    if (listener.protocol !== Protocol.PROTOCOL_TCP) return `tls: must not be set on a ${kind} listener (the agent terminates TLS only on TCP listeners)`;
    if (listener.tls.certificateSecrets.length === 0) return 'tls.certificate_secrets: a TLS-terminating listener needs at least one certificate Secret';
    const problem = tlsSettingsProblem(listener.tls);
    if (problem !== undefined) return problem;
  }
  if (listener.protocol === Protocol.PROTOCOL_UDP && listener.acceptProxyProtocol) return 'accept_proxy_protocol: not supported on UDP listeners';
  const route = listener.l4Route;
  if (route === undefined) return `l4_route: a ${kind} listener needs a route`;
  if (route.backends.length === 0) return 'l4_route.backends: must have at least one backend';
  for (const [i, b] of route.backends.entries()) {
    if (!Number.isInteger(b.weight) || b.weight < 0) return `l4_route.backends[${i}].weight: must be >= 0`;
  }
  if (listener.protocol !== Protocol.PROTOCOL_TLS_PASSTHROUGH && route.hostnames.length > 0) return `l4_route.hostnames: only TLS passthrough listeners route by host name`;
  for (const [i, h] of route.hostnames.entries()) {
    if (isIP(h) !== 0 || !HOSTNAME.test(h)) return `l4_route.hostnames[${i}]: "${h}" is not a hostname`;
  }
  return undefined;
}
