import { z } from 'zod';
import { whenFieldsValid, cidr, count, duration, labelsSchema, objectName, namespaceName, port, positiveCount } from './common.js';
import { envelope, inputStatus, namespacedMetadata, statusSchema } from './resource.js';

export const LISTENER_PROTOCOLS = ['HTTP', 'HTTPS', 'TCP', 'UDP', 'TLS'] as const;
export type ListenerProtocol = (typeof LISTENER_PROTOCOLS)[number];

const labelSelectorRequirementSchema = z
  .strictObject({
    key: z.string().min(1).describe('Label key the requirement applies to.'),
    operator: z
      .enum(['In', 'NotIn', 'Exists', 'DoesNotExist'])
      .describe('How the label is compared: In, NotIn, Exists or DoesNotExist.'),
    values: z
      .array(z.string())
      .optional()
      .describe('Values for In and NotIn (at least one); must be empty or absent for Exists and DoesNotExist.'),
  })
  .superRefine((r, ctx) => {
    const n = r.values?.length ?? 0;
    if ((r.operator === 'In' || r.operator === 'NotIn') && n === 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `must list at least one value for operator ${r.operator}` });
    }
    if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && n > 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `must be empty for operator ${r.operator}` });
    }
  })
  .describe('A label requirement: key, operator and values.');

export const agentSelectorSchema = z
  .strictObject({
    matchLabels: labelsSchema.optional().describe('Agents must carry all of these labels with these values.'),
    matchExpressions: z
      .array(labelSelectorRequirementSchema)
      .optional()
      .describe('Agents must satisfy all of these requirements.'),
  })
  .describe('Kubernetes label selector over agent labels. Empty selects every agent.');

const certificateRefSchema = z
  .strictObject({
    name: objectName().describe('Name of a Secret of type tls holding tls.crt and tls.key.'),
    namespace: namespaceName().optional().describe("Namespace of the Secret. Default: the Listener's namespace."),
  })
  .describe('Reference to a Secret of type tls.');

const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

const listenerTlsSchema = z
  .strictObject({
    mode: z
      .enum(['Terminate', 'Passthrough'])
      .default('Terminate')
      .describe(
        'Terminate: the agent decrypts with certificateRefs. Passthrough (protocol TLS only): the agent reads SNI and forwards the encrypted stream untouched. Default: Terminate.',
      ),
    certificateRefs: z
      .array(certificateRefSchema)
      .optional()
      .describe('Certificates to serve, chosen by SNI; the first is the default. Required (at least one) when mode is Terminate.'),
    minVersion: z.enum(TLS_VERSIONS).optional().describe('Lowest TLS version accepted: TLSv1.2 or TLSv1.3. Unset: TLSv1.2.'),
    maxVersion: z.enum(TLS_VERSIONS).optional().describe('Highest TLS version accepted: TLSv1.2 or TLSv1.3. Unset: TLSv1.3.'),
    alpnProtocols: z
      .array(z.enum(['h2', 'http/1.1']))
      .optional()
      .describe('ALPN protocols offered, in preference order: h2, http/1.1. Unset: [h2, http/1.1].'),
  })
  .superRefine((tls, ctx) => {
    if (tls.mode === 'Terminate' && (tls.certificateRefs?.length ?? 0) === 0) {
      ctx.addIssue({ code: 'custom', path: ['certificateRefs'], message: 'Required value: mode Terminate needs at least one certificate' });
    }
    if (tls.mode === 'Passthrough' && tls.certificateRefs !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['certificateRefs'], message: 'must not be set when mode is Passthrough: the agent does not decrypt' });
    }
    if (tls.minVersion && tls.maxVersion && tls.minVersion > tls.maxVersion) {
      ctx.addIssue({ code: 'custom', path: ['minVersion'], message: `must not be higher than maxVersion (${tls.maxVersion})` });
    }
  })
  .describe('TLS settings. Required for protocols HTTPS and TLS; not allowed for HTTP, TCP and UDP.');

const HTTP_ONLY_LIMITS = ['maxRequestHeaderBytes', 'maxRequestHeaders', 'maxRequestBodyBytes', 'requestHeadersTimeout', 'requestBodyTimeout'] as const;

const limitsSchema = z
  .strictObject({
    maxConnections: positiveCount().optional().describe('Most concurrent connections the listener accepts per agent; more are refused. Unset: no limit.'),
    maxConnectionsPerClient: positiveCount()
      .optional()
      .describe('Most concurrent connections from one client IP. Unset: no limit.'),
    maxRequestHeaderBytes: positiveCount()
      .optional()
      .describe('HTTP only. Largest request header block in bytes; bigger requests get 431. Unset: 16384 (16 KiB).'),
    maxRequestHeaders: positiveCount().optional().describe('HTTP only. Most request header fields; more get 431. Unset: 100.'),
    maxRequestBodyBytes: count().optional().describe('HTTP only. Largest request body in bytes; bigger requests get 413. Unset: no limit.'),
    requestHeadersTimeout: duration()
      .optional()
      .describe('HTTP only. Time allowed to receive the request headers (duration, e.g. 10s). Unset: 60s.'),
    requestBodyTimeout: duration().optional().describe('HTTP only. Time allowed to receive the request body (duration). Unset: no limit.'),
    idleTimeout: duration()
      .optional()
      .describe('Close a client connection (or UDP session) idle this long (duration, e.g. 60s). Unset: 60s.'),
  })
  .describe('Resource limits that protect the agent from clients.');

const proxyProtocolAcceptSchema = z
  .strictObject({
    accept: z
      .boolean()
      .describe('Expect a PROXY protocol v1/v2 header on every connection and take the client address from it. Only enable behind a load balancer that sends it.'),
  })
  .describe('PROXY protocol from a load balancer in front of the agent (TCP-based protocols only).');

export const listenerSpecSchema = z
  .strictObject({
    port: port().describe('Port the agents listen on, 1-65535.'),
    protocol: z
      .enum(LISTENER_PROTOCOLS)
      .describe('HTTP, HTTPS (TLS terminated, then HTTP), TCP, UDP, or TLS (Passthrough: forwarded untouched, routed by SNI; Terminate: decrypted, then proxied as TCP).'),
    agentSelector: agentSelectorSchema
      .default(() => ({}))
      .describe('Which agents serve this listener, by agent label. Default: {} (every agent).'),
    tls: listenerTlsSchema.optional(),
    trustedProxies: z
      .array(cidr())
      .optional()
      .describe('HTTP only. CIDRs (or plain IPs) of proxies in front whose X-Forwarded-For is believed. Unset: none; the client address is the peer address.'),
    proxyProtocol: proxyProtocolAcceptSchema.optional(),
    limits: limitsSchema.optional(),
    h2c: z
      .boolean()
      .optional()
      .describe('HTTP only. Also accept HTTP/2 without TLS from clients that know the port speaks it (prior knowledge), beside HTTP/1.1. Unset: false.'),
    accessLog: z
      .strictObject({
        enabled: z.boolean().describe('Write one JSON line per request (HTTP) or connection (TCP, UDP, TLS) to the agent\'s standard output.'),
      })
      .optional()
      .describe('Access log of this listener. Unset: off.'),
  })
  // One refinement per concern, each run as soon as the fields it reads are valid.
  .superRefine(
    (spec, ctx) => {
      const p = spec.protocol;
      if ((p === 'HTTPS' || p === 'TLS') && spec.tls === undefined) {
        ctx.addIssue({ code: 'custom', path: ['tls'], message: `Required value: protocol ${p} needs tls` });
      }
      if ((p === 'HTTP' || p === 'TCP' || p === 'UDP') && spec.tls !== undefined) {
        const hint = p === 'HTTP' ? 'use protocol HTTPS' : p === 'TCP' ? 'use protocol TLS' : 'UDP has no TLS';
        ctx.addIssue({ code: 'custom', path: ['tls'], message: `must not be set when protocol is ${p} (${hint})` });
      }
      if (p === 'HTTPS' && spec.tls?.mode === 'Passthrough') {
        ctx.addIssue({ code: 'custom', path: ['tls', 'mode'], message: 'Passthrough needs protocol TLS: HTTPS always terminates' });
      }
    },
    { when: whenFieldsValid('protocol', 'tls') },
  )
  .superRefine(
    (spec, ctx) => {
      const p = spec.protocol;
      if ((p === 'TCP' || p === 'UDP' || p === 'TLS') && spec.trustedProxies !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['trustedProxies'], message: `must not be set when protocol is ${p}: X-Forwarded-For is HTTP only` });
      }
    },
    { when: whenFieldsValid('protocol', 'trustedProxies') },
  )
  .superRefine(
    (spec, ctx) => {
      const p = spec.protocol;
      if (p !== 'TCP' && p !== 'UDP' && p !== 'TLS') return;
      for (const k of HTTP_ONLY_LIMITS) {
        if (spec.limits?.[k] !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['limits', k], message: `must not be set when protocol is ${p}: HTTP only` });
        }
      }
    },
    { when: whenFieldsValid('protocol', 'limits') },
  )
  .superRefine(
    (spec, ctx) => {
      if (spec.protocol === 'UDP' && spec.proxyProtocol !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['proxyProtocol'], message: 'must not be set when protocol is UDP' });
      }
    },
    { when: whenFieldsValid('protocol', 'proxyProtocol') },
  )
  .superRefine(
    (spec, ctx) => {
      if (spec.h2c === true && spec.protocol !== 'HTTP') {
        const hint = spec.protocol === 'HTTPS' ? ': HTTPS offers h2 through tls.alpnProtocols' : '';
        ctx.addIssue({ code: 'custom', path: ['h2c'], message: `must not be set when protocol is ${spec.protocol}${hint}` });
      }
    },
    { when: whenFieldsValid('protocol', 'h2c') },
  )
  .describe('Desired state of a Listener: a port the selected agents open, and how it speaks.');

export const listenerStatusSchema = statusSchema('Observed state of the Listener.', {
  attachedRoutes: count().optional().describe('How many routes are attached to this listener and accepted.'),
});

const LISTENER_DESCRIPTION =
  'A Listener is a port opened on a set of agents (selected by label), with its protocol, TLS and limits. Routes attach to it through parentRefs.';

export const ListenerSchema = z
  .strictObject({ ...envelope('Listener'), ...namespacedMetadata(), spec: listenerSpecSchema, status: listenerStatusSchema })
  .describe(LISTENER_DESCRIPTION);

export const ListenerInputSchema = z.strictObject({
  ...envelope('Listener'),
  ...namespacedMetadata(),
  spec: listenerSpecSchema,
  status: inputStatus(),
});

export type Listener = z.output<typeof ListenerSchema>;
export type ListenerInput = z.input<typeof ListenerSchema>;
