import { z } from 'zod';
import { count, labelsSchema } from './common.js';
import { clusterMetadata, envelope, inputStatus, statusSchema } from './resource.js';

export const agentSpecSchema = z
  .strictObject({
    labels: labelsSchema.optional().describe('Labels the agent registered with; Listener agentSelectors match them.'),
    version: z.string().optional().describe('Software version of the agent.'),
    capabilities: z.array(z.string()).optional().describe('Features the agent supports, e.g. http2, udp, proxy-protocol.'),
  })
  .describe('What the agent reported when it registered.');

const nackSchema = z
  .strictObject({
    kind: z.string().describe('Kind of the rejected resource.'),
    name: z.string().describe('Name of the rejected resource (namespace/name for namespaced kinds).'),
    version: z.string().optional().describe('Version of the configuration that was rejected.'),
    message: z.string().describe('Why the agent rejected it; it keeps serving the previous version.'),
  })
  .describe('A configuration the agent rejected (NACK).');

export const agentStatusSchema = statusSchema('Observed state of the agent.', {
  connected: z.boolean().describe('Whether the agent has a live stream to a controller.'),
  controller: z.string().optional().describe('Controller instance the agent is connected to.'),
  appliedRevision: count().optional().describe('Store revision of the configuration the agent last applied.'),
  lag: count().optional().describe('How many revisions the agent is behind the store.'),
  lastSeen: z.string().optional().describe('When the agent was last heard from (RFC 3339).'),
  nacks: z.array(nackSchema).optional().describe('Configurations the agent currently rejects.'),
});

const agentFields = {
  ...envelope('Agent'),
  ...clusterMetadata(),
  spec: agentSpecSchema.default(() => ({})),
};

export const AgentSchema = z
  .strictObject({ ...agentFields, status: agentStatusSchema })
  .describe('An Agent is a data-plane process registered with the controller. Cluster-scoped and read-only: agents create it, users only read it.');

export const AgentInputSchema = z.strictObject({ ...agentFields, status: inputStatus() });

export type Agent = z.output<typeof AgentSchema>;
