import { request as httpRequest } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { HealthCheck, UpstreamTls } from '@sluice/proto';
import { tlsConnectOptions } from '../data-plane/upstream-pool.js';

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
  /** The cluster speaks HTTP/2 (h2c, or h2 over TLS): HTTP checks do too, as gRPC-only servers refuse HTTP/1.1. */
  readonly http2?: boolean;
}

export type ProbeOutcome = { ok: true } | { ok: false; error: string };

/** One probe, over a fresh connection: HTTP request or TCP connect, failed by timeout. */
export function probe(spec: ProbeSpec): Promise<ProbeOutcome> {
  const timeoutMs = spec.check.timeoutMs || 1000;
  if (spec.check.check?.$case !== 'http') return tcpProbe(spec, timeoutMs);
  return spec.http2 === true ? h2Probe(spec, spec.check.check.value, timeoutMs) : httpProbe(spec, spec.check.check.value, timeoutMs);
}

type HttpCheck = { path: string; expectedStatuses: number[]; host: string; method: string };

function verdict(http: HttpCheck, status: number): ProbeOutcome {
  const expected = http.expectedStatuses.length > 0 ? http.expectedStatuses.includes(status) : status >= 200 && status < 300;
  return expected ? { ok: true } : { ok: false, error: `HTTP ${status}` };
}

function hostHeader(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

function httpProbe(spec: ProbeSpec, http: HttpCheck, timeoutMs: number): Promise<ProbeOutcome> {
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
      res.resume();
      done(verdict(http, res.statusCode ?? 0));
    });
    const timer = setTimeout(() => done({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => done({ ok: false, error: error.code ?? error.message }));
    req.end();
  });
}

/** One HTTP/2 session per probe, closed after the response headers: a probe, not a pool. */
function h2Probe(spec: ProbeSpec, http: HttpCheck, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const tls = spec.tls?.enabled === true;
    const session = h2connect(`${tls ? 'https' : 'http'}://${hostHeader(spec.address, spec.port)}`, tls ? tlsOptions(spec) : {});
    const done = (outcome: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
    const fail = (error: NodeJS.ErrnoException) => done({ ok: false, error: error.code ?? error.message });
    session.on('error', fail);
    const req = session.request({
      ':method': http.method || 'GET',
      ':path': http.path || '/',
      ':authority': http.host || hostHeader(spec.address, spec.port),
      'user-agent': spec.userAgent,
    });
    req.on('response', (headers) => done(verdict(http, Number(headers[':status']))));
    req.on('error', fail);
    req.end();
  });
}

/** As the request path connects (the same options as the pools). */
function tlsOptions(spec: ProbeSpec): ConnectionOptions {
  return tlsConnectOptions(spec.address, spec.port, { servername: spec.tls?.sni ?? '', verify: spec.tls?.insecureSkipVerify !== true, ca: spec.ca, caId: '' });
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
