import { ProtocolVersion, type Resource } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { AgentStatus, REDACTED } from './agent-status.js';

describe('AgentStatus.dump', () => {
  it('shows a Secret without its private key, and its certificate chain as is', () => {
    const status = new AgentStatus({ id: 'a1', labels: {}, version: '0.1.0', capabilities: [], protocolVersion: ProtocolVersion.PROTOCOL_VERSION_V1 }, silentLogger());
    const secret: Resource = {
      name: 'default/shop',
      version: 'v1',
      body: { $case: 'secret', value: { sources: [], certificateChain: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', privateKey: '-----BEGIN PRIVATE KEY-----\nSECRETKEYBYTES\n-----END PRIVATE KEY-----\n' } },
    };
    const ca: Resource = { name: 'default/ca', version: 'v1', body: { $case: 'secret', value: { sources: [], certificateChain: 'CA PEM', privateKey: '' } } };
    const dump = JSON.stringify(status.dump([secret, ca], new Map()));
    expect(dump).not.toContain('SECRETKEYBYTES');
    expect(dump).not.toContain('PRIVATE KEY');
    const resources = (JSON.parse(dump) as { resources: { secret?: { privateKey?: string; certificateChain?: string } }[] }).resources;
    expect(resources[0]?.secret?.privateKey).toBe(REDACTED);
    expect(resources[0]?.secret?.certificateChain).toContain('BEGIN CERTIFICATE');
    // A CA bundle has no key to hide.
    expect(resources[1]?.secret?.privateKey).toBeUndefined();
  });
});
