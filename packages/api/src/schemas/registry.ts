import type { z } from 'zod';
import type { KindName } from '../kinds.js';
import { AgentInputSchema, AgentSchema } from './agent.js';
import { ListenerInputSchema, ListenerSchema } from './listener.js';
import { RouteInputSchema, RouteSchema, TCPRouteInputSchema, TCPRouteSchema, UDPRouteInputSchema, UDPRouteSchema } from './route.js';
import { SecretInputSchema, SecretSchema } from './secret.js';
import { UpstreamInputSchema, UpstreamSchema } from './upstream.js';

/**
 * Per kind: `input` validates what users send (status passes through as any object);
 * `document` is the same shape with the typed status, for types and the published schema.
 */
export const RESOURCE_SCHEMAS: Record<KindName, { input: z.ZodType; document: z.ZodType }> = {
  Listener: { input: ListenerInputSchema, document: ListenerSchema },
  Route: { input: RouteInputSchema, document: RouteSchema },
  TCPRoute: { input: TCPRouteInputSchema, document: TCPRouteSchema },
  UDPRoute: { input: UDPRouteInputSchema, document: UDPRouteSchema },
  Upstream: { input: UpstreamInputSchema, document: UpstreamSchema },
  Secret: { input: SecretInputSchema, document: SecretSchema },
  Agent: { input: AgentInputSchema, document: AgentSchema },
};
