import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import type { HealthCheck, UpstreamTls } from '@sluice/proto';

/** Where and how to probe one endpoint. */
export interface ProbeSpec {
  readonly address: string;
  readonly port: number;
  readonly check: HealthCheck;
  readonly tls: UpstreamTls | undefined;
  /** PEM CA bundle of `tls.ca_secret`; undefined = Node's default trust store. */
  readonly ca?: string | undefined;
  /** Sent as User-Agent so a backend can tell probes from traffic (and which agent probes). */
  readonly userAgent: string;
}

export type ProbeOutcome = { ok: true } | { ok: false; error: string };

/** One probe, over a fresh connection: HTTP request or TCP connect, failed by timeout. */
export function probe(spec: ProbeSpec): Promise<ProbeOutcome> {
  const timeoutMs = spec.check.timeoutMs || 1000;
  return spec.check.check?.$case === 'http' ? httpProbe(spec, spec.check.check.value, timeoutMs) : tcpProbe(spec, timeoutMs);
}

function hostHeader(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

function httpProbe(spec: ProbeSpec, http: { path: string; expectedStatuses: number[]; host: string; method: string }, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (outcome: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(outcome);
    };
    const tls = spec.tls?.enabled === true;
    const options = {
      host: spec.address,
      port: spec.port,
      method: http.method || 'GET',
      path: http.path || '/',
      agent: false as const,
      headers: { host: http.host || hostHeader(spec.address, spec.port), 'user-agent': spec.userAgent, connection: 'close' },
      // As the request path does: the configured name, or the address (no SNI for an IP).
      ...(tls ? tlsOptions(spec) : {}),
    };
    const req = (tls ? httpsRequest : httpRequest)(options, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      const expected = http.expectedStatuses.length > 0 ? http.expectedStatuses.includes(status) : status >= 200 && status < 300;
      done(expected ? { ok: true } : { ok: false, error: `HTTP ${status}` });
    });
    const timer = setTimeout(() => done({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => done({ ok: false, error: error.code ?? error.message }));
    req.end();
  });
}

/** As the request path connects: the CA, the configured name (an IP address is checked, not sent as SNI), or the address. */
function tlsOptions(spec: ProbeSpec): ConnectionOptions {
  const sni = spec.tls?.sni ?? '';
  const ip = sni !== '' && isIP(sni) !== 0;
  return {
    rejectUnauthorized: spec.tls?.insecureSkipVerify !== true,
    ...(spec.ca !== undefined ? { ca: spec.ca } : {}),
    ...(sni !== '' && !ip ? { servername: sni } : {}),
    ...(ip ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(sni, cert) } : {}),
  };
}

function tcpProbe(spec: ProbeSpec, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const socket = connect({ host: spec.address, port: spec.port });
    const done = (outcome: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
    socket.on('connect', () => done({ ok: true }));
    socket.on('error', (error: NodeJS.ErrnoException) => done({ ok: false, error: error.code ?? error.message }));
  });
}
