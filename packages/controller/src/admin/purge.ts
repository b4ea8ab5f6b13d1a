import { randomBytes } from 'node:crypto';
import { CACHE_PURGE_ANNOTATION, KINDS, type KindInfo } from '@sluice/api';
import type express from 'express';
import type { ResourceService } from '../resources/resource-service.js';

const ROUTE_KIND = KINDS.find((k) => k.kind === 'Route') as KindInfo;

/**
 * A fresh purge token: the time (readable in `describe`) and a random suffix, so two purges
 * in the same millisecond on two replicas still differ.
 */
export function purgeToken(now = new Date()): string {
  return `${now.toISOString()}-${randomBytes(4).toString('hex')}`;
}

/**
 * POST /apis/sluice/v1/namespaces/{ns}/routes/{name}/purge: empties the Cache of a Route on
 * every agent. It sets the annotation sluice.io/cache-purge to a fresh token with a merge
 * patch (spec and generation untouched); the translator copies the token into the route's
 * Cache filters and each agent starts that route's store empty when the token changes.
 * 404 when the Route does not exist. Answers with the updated Route.
 */
export function registerPurge(app: express.Express, resources: ResourceService): void {
  app.post('/apis/sluice/v1/namespaces/:namespace/routes/:name/purge', async (req, res) => {
    const patch = { metadata: { annotations: { [CACHE_PURGE_ANNOTATION]: purgeToken() } } };
    res.json(await resources.patch(ROUTE_KIND, req.params.namespace, req.params.name, patch));
  });
}
