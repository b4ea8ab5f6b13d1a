import { z } from 'zod';
import { parseDuration } from '../duration.js';
import { checkedString, address, count, duration, headerName, hostname, labelsSchema, namespaceName, objectName, port, positiveCount, weight } from './common.js';
import { envelope, inputStatus, namespacedMetadata, statusSchema } from './resource.js';

export const LOAD_BALANCING_POLICIES = [
  'RoundRobin',
  'WeightedRoundRobin',
  'IPHash',
  'ConsistentHash',
  'LeastConnections',
  'WeightedLeastConnections',
  'LeastResponseTime',
  'Random',
] as const;
export type LoadBalancingPolicy = (typeof LOAD_BALANCING_POLICIES)[number];

const endpointSchema = z
  .strictObject({
    address: address().describe('IPv4 address, IPv6 address or DNS hostname of the backend server.'),
    port: port().describe('Port of the backend server, 1-65535.'),
    weight: weight()
      .default(1)
      .describe('Relative share of traffic for weighted policies (integer 0-1000000; 0 drains the endpoint). Default: 1.'),
    labels: labelsSchema.optional().describe('Labels of the endpoint, e.g. zone, for operators and status.'),
  })
  .describe('One backend server.');

const consistentHashKeySchema = z
  .strictObject({
    sourceIP: z.boolean().optional().describe('true: hash the client IP address.'),
    header: headerName().optional().describe('Hash the value of this request header (HTTP only).'),
    cookie: z
      .strictObject({
        name: z.string().min(1).describe('Cookie name.'),
        ttl: duration().optional().describe('If set and the cookie is missing, the agent issues it with this lifetime (duration).'),
        path: z.string().optional().describe('Path attribute of an issued cookie. Unset: /.'),
      })
      .optional()
      .describe('Hash the value of this cookie (HTTP only).'),
    queryParameter: z.string().min(1).optional().describe('Hash the value of this query parameter (HTTP only).'),
  })
  .superRefine((k, ctx) => {
    const set = [k.sourceIP === true, k.header !== undefined, k.cookie !== undefined, k.queryParameter !== undefined].filter(Boolean).length;
    if (set !== 1) ctx.addIssue({ code: 'custom', message: 'must set exactly one of sourceIP: true, header, cookie or queryParameter' });
  })
  .describe('What is hashed. Exactly one of sourceIP, header, cookie or queryParameter.');

const consistentHashSchema = z
  .strictObject({
    key: consistentHashKeySchema,
    algorithm: z
      .enum(['RingHash', 'Maglev'])
      .default('RingHash')
      .describe('RingHash (ketama ring, minimal movement when endpoints change) or Maglev (faster lookup, even spread). Default: RingHash.'),
    tableSize: positiveCount()
      .optional()
      .describe('RingHash: ring points of the highest-weight endpoint, others in proportion (at most 8388608). Maglev: lookup table size, a prime up to 5000011. Unset: 160 for RingHash, 65537 for Maglev.'),
    boundedLoadFactor: z
      .number()
      .min(1)
      .max(10)
      .optional()
      .describe(
        'Consistent hashing with bounded loads: an endpoint whose in-flight requests exceed this factor x the average is skipped for the next one on the ring (1-10, e.g. 1.25). Unset: unbounded.',
      ),
  })
  .superRefine((ch, ctx) => {
    if (ch.tableSize === undefined) return;
    if (ch.algorithm === 'Maglev' && (ch.tableSize > 5000011 || !isPrime(ch.tableSize))) {
      ctx.addIssue({ code: 'custom', path: ['tableSize'], message: 'must be a prime up to 5000011 for Maglev' });
    }
    if (ch.algorithm === 'RingHash' && ch.tableSize > 8388608) ctx.addIssue({ code: 'custom', path: ['tableSize'], message: 'must be at most 8388608 for RingHash' });
  })
  .describe('Options of the ConsistentHash policy.');

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

const loadBalancingSchema = z
  .strictObject({
    policy: z
      .enum(LOAD_BALANCING_POLICIES)
      .default('RoundRobin')
      .describe(`How an endpoint is picked: ${LOAD_BALANCING_POLICIES.join(', ')}. Default: RoundRobin.`),
    consistentHash: consistentHashSchema.optional(),
    choiceCount: z
      .number()
      .int()
      .min(2)
      .max(10)
      .optional()
      .describe(
        'LeastConnections, WeightedLeastConnections and LeastResponseTime: endpoints sampled per pick (power of N choices). Unset: all endpoints for the least-connections policies, 2 for LeastResponseTime.',
      ),
    panicThresholdPercent: z
      .number()
      .int()
      .min(0)
      .max(100)
      .optional()
      .describe('When fewer than this percentage of the endpoints in rotation are healthy, balance over all of them, ignoring health (0-100; 0 disables). Unset: 50.'),
  })
  .superRefine((lb, ctx) => {
    if (lb.policy === 'ConsistentHash' && lb.consistentHash === undefined) {
      ctx.addIssue({ code: 'custom', path: ['consistentHash'], message: 'Required value: policy ConsistentHash needs consistentHash.key' });
    }
    if (lb.policy !== 'ConsistentHash' && lb.consistentHash !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['consistentHash'], message: `must not be set when policy is ${lb.policy}` });
    }
    const least = ['LeastConnections', 'WeightedLeastConnections', 'LeastResponseTime'];
    if (lb.choiceCount !== undefined && !least.includes(lb.policy)) {
      ctx.addIssue({ code: 'custom', path: ['choiceCount'], message: `must not be set when policy is ${lb.policy}` });
    }
  })
  .describe('Load-balancing policy and its options. Default: {policy: RoundRobin}.');

const httpHealthCheckSchema = z
  .strictObject({
    path: checkedString((v) => (v.startsWith('/') ? undefined : 'must start with "/"')).default('/').describe('Path requested, starting with "/". Default: "/".'),
    host: hostname().optional().describe('Host header sent. Unset: the endpoint address.'),
    method: z.enum(['GET', 'HEAD']).optional().describe('GET or HEAD. Unset: GET.'),
    expectedStatuses: z
      .array(z.number().int().min(100).max(599))
      .min(1)
      .optional()
      .describe('Status codes that count as healthy. Unset: any 2xx.'),
  })
  .describe('Probe with an HTTP request.');

const tcpHealthCheckSchema = z
  .strictObject({
    send: z.string().optional().describe('Text to send after connecting. Unset: connect only.'),
    expect: z.string().optional().describe('Text the response must contain. Unset: a successful connect is healthy.'),
  })
  .describe('Probe by opening a TCP connection, optionally sending and expecting text.');

const healthCheckSchema = z
  .strictObject({
    http: httpHealthCheckSchema.optional(),
    tcp: tcpHealthCheckSchema.optional(),
    interval: duration().default('5s').describe('Time between probes of each endpoint (duration). Default: 5s.'),
    timeout: duration().default('1s').describe('A probe that takes longer fails (duration). Default: 1s.'),
    healthyThreshold: positiveCount().default(2).describe('Consecutive successes that mark an unhealthy endpoint healthy. Default: 2.'),
    unhealthyThreshold: positiveCount().default(3).describe('Consecutive failures that mark a healthy endpoint unhealthy. Default: 3.'),
    port: port().optional().describe("Port probed. Unset: the endpoint's port."),
  })
  .superRefine((hc, ctx) => {
    if ((hc.http === undefined) === (hc.tcp === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'must set exactly one of http or tcp' });
    }
    const interval = parseDuration(hc.interval);
    const timeout = parseDuration(hc.timeout);
    if (interval !== undefined && timeout !== undefined && timeout > interval) {
      ctx.addIssue({ code: 'custom', path: ['timeout'], message: `must not be longer than interval (${hc.interval})` });
    }
  })
  .describe('Active health checking: a few agents (2 by default) probe each endpoint, the controller merges their verdicts and every agent stops sending traffic to unhealthy ones. Exactly one of http or tcp.');

const outlierDetectionSchema = z
  .strictObject({
    consecutive5xx: positiveCount().optional().describe('Eject an endpoint after this many 5xx responses in a row (HTTP). Unset: not checked.'),
    consecutiveGatewayErrors: positiveCount().optional().describe('Eject after this many 502/503/504 responses in a row (HTTP). Unset: not checked.'),
    consecutiveConnectFailures: positiveCount().optional().describe('Eject after this many failed connection attempts in a row. Unset: not checked.'),
    interval: duration().optional().describe('Each interval an endpoint spends back in rotation lowers its ejection multiplier by one (duration). Unset: 10s.'),
    baseEjectionTime: duration()
      .optional()
      .describe('Ejection time; it grows with each repeated ejection of the same endpoint (duration). Unset: 30s.'),
    maxEjectionTime: duration().optional().describe('Longest ejection (duration). Unset: 300s.'),
    maxEjectionPercent: z.number().int().min(0).max(100).optional().describe('Most endpoints, in percent, ejected at once (0-100). Unset: 10.'),
  })
  .describe('Passive health checking: eject endpoints that fail real traffic, Envoy style.');

const slowStartSchema = z
  .strictObject({
    window: duration().describe('Ramp-up time after an endpoint becomes healthy or is added (duration).'),
    aggression: z.number().gt(0).optional().describe('Shape of the ramp: 1 is linear, higher ramps faster early. Unset: 1.'),
    minWeightPercent: z.number().min(0).max(100).optional().describe('Weight at the start of the window, in percent of the full weight. Unset: 10.'),
  })
  .describe('Ramp traffic to new or recovered endpoints up gradually instead of all at once.');

const circuitBreakerSchema = z
  .strictObject({
    maxConnections: positiveCount().optional().describe('Most concurrent connections to the upstream per agent. Unset: no limit.'),
    maxPendingRequests: positiveCount().optional().describe('Most requests waiting for a connection per agent; more get 503. Unset: no limit.'),
    maxRequests: positiveCount().optional().describe('Most concurrent requests to the upstream per agent; more get 503. Unset: no limit.'),
    maxRetries: count().optional().describe('Most concurrent retries to the upstream per agent. Unset: no limit.'),
  })
  .describe('Limits that shed load instead of queueing without end.');

const sessionPersistenceSchema = z
  .strictObject({
    type: z.enum(['Cookie', 'Header', 'SourceIP']).describe('Cookie (the agent issues an affinity cookie), Header (a client-supplied header) or SourceIP.'),
    cookieName: z.string().min(1).optional().describe('Name of the affinity cookie, for type Cookie.'),
    headerName: headerName().optional().describe('Header carrying the session id, for type Header.'),
    ttl: duration().optional().describe('How long the affinity lasts (duration). Unset: a session cookie, or forever for the other types.'),
  })
  .superRefine((s, ctx) => {
    if (s.type === 'Cookie' && s.cookieName === undefined) ctx.addIssue({ code: 'custom', path: ['cookieName'], message: 'Required value: type Cookie needs cookieName' });
    if (s.type !== 'Cookie' && s.cookieName !== undefined) ctx.addIssue({ code: 'custom', path: ['cookieName'], message: `must not be set when type is ${s.type}` });
    if (s.type === 'Header' && s.headerName === undefined) ctx.addIssue({ code: 'custom', path: ['headerName'], message: 'Required value: type Header needs headerName' });
    if (s.type !== 'Header' && s.headerName !== undefined) ctx.addIssue({ code: 'custom', path: ['headerName'], message: `must not be set when type is ${s.type}` });
  })
  .describe('Keep a client on the endpoint that served it before, while that endpoint is healthy.');

const dynamicWeightsSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Adjust endpoint weights from observed latency and errors. Default: false.'),
    interval: duration().default('5s').describe('How often weights are recomputed (duration). Default: 5s.'),
    minFactor: z.number().min(0).default(0.1).describe('Lowest multiplier applied to a configured weight. Default: 0.1.'),
    maxFactor: z.number().gt(0).default(2).describe('Highest multiplier applied to a configured weight. Default: 2.'),
    dampening: z.number().gt(0).max(1).optional().describe('Fraction of the way to its target a factor moves per interval (0-1]. Unset: 0.5.'),
    threshold: z.number().min(0).max(1).optional().describe('Relative dead band: a factor within this fraction of its target stays put, so weights do not flap (0-1). Unset: 0.1.'),
    minRequests: z.number().int().min(0).optional().describe('Endpoints with fewer requests in the window are not judged (no penalty). Unset: 20.'),
  })
  .superRefine((d, ctx) => {
    if (d.minFactor > d.maxFactor) ctx.addIssue({ code: 'custom', path: ['minFactor'], message: `must be <= maxFactor (${d.maxFactor})` });
  })
  .describe('Let the agents scale endpoint weights by measured performance, within [minFactor, maxFactor] of the configured weight.');

const upstreamTimeoutsSchema = z
  .strictObject({
    connect: duration().default('5s').describe('Time allowed to connect to an endpoint (duration). Default: 5s.'),
    idle: duration().optional().describe('Close pooled upstream connections idle this long (duration). Unset: 60s.'),
  })
  .describe('Timeouts towards the endpoints. Default: {connect: 5s}.');

const secretRefSchema = (what: string) =>
  z
    .strictObject({
      name: objectName().describe(`Name of a Secret holding ${what}.`),
      namespace: namespaceName().optional().describe("Namespace of the Secret. Default: the Upstream's namespace."),
    })
    .describe(`Reference to a Secret holding ${what}.`);

const upstreamTlsSchema = z
  .strictObject({
    sni: hostname().optional().describe('Server name sent in the TLS handshake and verified. Unset: the endpoint address if it is a hostname.'),
    caCertificateRefs: z
      .array(secretRefSchema('CA certificates (ca.crt, or tls.crt)'))
      .optional()
      .describe('CAs trusted to sign the endpoint certificates. Unset: the system trust store.'),
    clientCertificateRef: secretRefSchema('a client certificate and key (type tls), for mutual TLS').optional(),
    insecureSkipVerify: z.boolean().optional().describe('Do not verify the endpoint certificate. For tests only. Unset: false.'),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).optional().describe('Lowest TLS version: TLSv1.2 or TLSv1.3. Unset: TLSv1.2.'),
  })
  .describe('Connect to the endpoints over TLS. Unset: plain text.');

const proxyProtocolSendSchema = z
  .strictObject({
    send: z.enum(['v1', 'v2']).describe('PROXY protocol version sent at the start of each upstream connection: v1 (text) or v2 (binary).'),
  })
  .describe('Tell the endpoints the original client address with a PROXY protocol header.');

export const upstreamSpecSchema = z
  .strictObject({
    endpoints: z.array(endpointSchema).describe('Backend servers. May be empty, which makes the upstream answer 503.'),
    loadBalancing: loadBalancingSchema.default(() => ({ policy: 'RoundRobin' as const })),
    healthCheck: healthCheckSchema.optional(),
    outlierDetection: outlierDetectionSchema.optional(),
    slowStart: slowStartSchema.optional(),
    circuitBreaker: circuitBreakerSchema.optional(),
    sessionPersistence: sessionPersistenceSchema.optional(),
    dynamicWeights: dynamicWeightsSchema.optional(),
    timeouts: upstreamTimeoutsSchema.default(() => ({ connect: '5s' })),
    tls: upstreamTlsSchema.optional(),
    http2: z
      .boolean()
      .optional()
      .describe('Speak HTTP/2 to the endpoints: h2 over TLS when tls is set, else h2c with prior knowledge. Needed for gRPC. Unset: false (HTTP/1.1).'),
    proxyProtocol: proxyProtocolSendSchema.optional(),
  })
  .superRefine(
    (spec, ctx) => {
      // Runs even when some endpoints are malformed: those are skipped, the rest still checked.
      const seen = new Map<string, number>();
      for (const [i, e] of spec.endpoints.entries()) {
        const { address, port } = e as { address?: unknown; port?: unknown };
        if (typeof address !== 'string' || typeof port !== 'number') continue;
        const key = `${address.toLowerCase()}:${port}`;
        const first = seen.get(key);
        if (first !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['endpoints', i], message: `duplicate endpoint ${address}:${port} (also endpoints[${first}])` });
        } else {
          seen.set(key, i);
        }
      }
    },
    { when: (p) => Array.isArray((p.value as { endpoints?: unknown } | null)?.endpoints) },
  )
  .describe('Desired state of an Upstream: its endpoints and how traffic is spread over them.');

export const upstreamStatusSchema = statusSchema('Observed state of the Upstream.', {
  endpoints: z
    .array(
      z
        .strictObject({
          address: z.string().describe('Endpoint address.'),
          port: port().describe('Endpoint port.'),
          health: z.enum(['Healthy', 'Unhealthy', 'Unknown']).describe('Healthy, Unhealthy or Unknown (no checks yet).'),
          since: z.string().optional().describe('When health last changed (RFC 3339).'),
          weight: z.number().min(0).optional().describe('Weight as configured in spec.endpoints.'),
          effectiveWeight: z.number().min(0).optional().describe('Weight after dynamic weights: configured weight x factor (2 decimals). Unset: dynamic weights off.'),
          latency: z
            .strictObject({
              ewmaMs: z.number().min(0).optional().describe('Request-weighted latency EWMA across agents (ms).'),
              p50Ms: z.number().min(0).optional().describe('Median latency across agents (ms).'),
              p99Ms: z.number().min(0).optional().describe('99th percentile latency across agents (ms).'),
            })
            .optional()
            .describe('Latency the agents measured, merged over the aggregation window. Unset: no data.'),
          errorRate: z.number().min(0).max(1).optional().describe('Errors / requests over the aggregation window (0-1). Unset: no data.'),
          requests: z.number().int().min(0).optional().describe('Requests over the aggregation window, all agents together. Unset: no data.'),
          agents: z.number().int().min(0).optional().describe('Agents reporting traffic to this endpoint. Unset: no data.'),
        })
        .describe('Health, weight and traffic figures of one endpoint as the agents report them.'),
    )
    .optional()
    .describe('Per-endpoint health, aggregated from the agents.'),
});

export const UpstreamSchema = z
  .strictObject({ ...envelope('Upstream'), ...namespacedMetadata(), spec: upstreamSpecSchema, status: upstreamStatusSchema })
  .describe(
    'An Upstream is a set of backend endpoints with a load-balancing policy, health checks, outlier detection, session persistence, circuit breaking, slow start, dynamic weights and TLS. Routes send traffic to it through backendRefs.',
  );
export const UpstreamInputSchema = z.strictObject({ ...envelope('Upstream'), ...namespacedMetadata(), spec: upstreamSpecSchema, status: inputStatus() });

export type Upstream = z.output<typeof UpstreamSchema>;
