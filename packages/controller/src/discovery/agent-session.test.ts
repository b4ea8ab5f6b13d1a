import { describe, expect, it } from 'vitest';
import { DiscoveryRequest, ResourceType } from '@sluice/proto';
import { AgentSession } from './agent-session.js';
import { group, served } from './test-support.js';
import type { ServedResource } from './translator-port.js';
import type { OutgoingResponse } from './wire.js';

const { RESOURCE_TYPE_SECRET: SECRET, RESOURCE_TYPE_CLUSTER: CLUSTER, RESOURCE_TYPE_ENDPOINTS: ENDPOINTS, RESOURCE_TYPE_ROUTE_TABLE: ROUTE_TABLE, RESOURCE_TYPE_LISTENER: LISTENER } = ResourceType;

const cluster = served(CLUSTER, 'default/api', 'c1', { kind: 'Upstream', namespace: 'default', name: 'api' });
const endpoints = served(ENDPOINTS, 'default/api', 'e1');
const table = served(ROUTE_TABLE, 'default/web', 'r1', { kind: 'Route', namespace: 'default', name: 'shop' });
const listener = served(LISTENER, 'default/web', 'l1', { kind: 'Listener', namespace: 'default', name: 'web' });
const secret = served(SECRET, 'default/cert', 's1', { kind: 'Secret', namespace: 'default', name: 'cert' });
const base = [cluster, endpoints, table, listener];

function session(held: ServedResource[] = []) {
  let n = 0;
  return new AgentSession(
    held.map((r) => ({ key: { type: r.type, name: r.name }, version: r.version })),
    () => `n${++n}`,
  );
}

const names = (r: OutgoingResponse | undefined) => r?.resources.map((x) => `${x.type.replace('RESOURCE_TYPE_', '')} ${x.name}`);
const ack = (r: OutgoingResponse) => DiscoveryRequest.fromPartial({ responseNonce: r.nonce });
const nack = (r: OutgoingResponse, x: ServedResource, message = 'bad', withSources = false) =>
  DiscoveryRequest.fromPartial({
    responseNonce: r.nonce,
    errors: [{ key: { type: x.type, name: x.name }, version: x.version, message, sources: withSources ? [{ kind: 'Route', namespace: 'default', name: 'other' }] : [] }],
  });

describe('AgentSession', () => {
  it('sends everything on a first start, in make-before-break order', () => {
    const s = session();
    const first = s.offer(group(5, [listener, table, endpoints, cluster, secret]));
    expect(names(first)).toEqual(['SECRET default/cert', 'CLUSTER default/api', 'ENDPOINTS default/api', 'ROUTE_TABLE default/web', 'LISTENER default/web']);
    expect(first).toMatchObject({ nonce: 'n1', revision: 5, removed: [] });
    expect(s.appliedRevision).toBeUndefined();
    s.answer(ack(first!));
    expect(s.appliedRevision).toBe(5);
    expect(s.lag).toBe(0);
  });

  it('on resume sends only the difference, and an empty first response when nothing differs', () => {
    const same = session(base);
    const empty = same.offer(group(7, base));
    expect(empty).toMatchObject({ nonce: 'n1', revision: 7, resources: [], removed: [] });

    const changed = served(CLUSTER, 'default/api', 'c2');
    const gone = served(LISTENER, 'default/old', 'x');
    const other = session([...base, gone, served(ROUTE_TABLE, 'default/old', 'x')]);
    const diff = other.offer(group(8, [changed, endpoints, table, listener]));
    expect(names(diff)).toEqual(['CLUSTER default/api']);
    // Removals: listeners before route tables.
    expect(diff!.removed).toEqual([{ type: LISTENER, name: 'default/old' }, { type: ROUTE_TABLE, name: 'default/old' }]);
  });

  it('keeps one response in flight and coalesces snapshots that arrive meanwhile', () => {
    const s = session();
    const first = s.offer(group(1, base))!;
    expect(s.offer(group(2, [...base, secret]))).toBeUndefined();
    expect(s.offer(group(3, [served(CLUSTER, 'default/api', 'c3'), endpoints, table, listener, secret]))).toBeUndefined();
    const { response } = s.answer(ack(first));
    expect(names(response)).toEqual(['SECRET default/cert', 'CLUSTER default/api']);
    expect(response!.revision).toBe(3);
    expect(s.appliedRevision).toBe(1);
    expect(s.lag).toBe(2);
  });

  it('sends only changed resources and removals after the first response', () => {
    const s = session();
    s.answer(ack(s.offer(group(1, base))!));
    const e2 = served(ENDPOINTS, 'default/api', 'e2');
    const next = s.offer(group(2, [e2, table, listener, cluster]));
    expect(names(next)).toEqual(['ENDPOINTS default/api']);
    s.answer(ack(next!));
    const removal = s.offer(group(3, [cluster, e2]));
    expect(removal!.resources).toEqual([]);
    expect(removal!.removed).toEqual([{ type: LISTENER, name: 'default/web' }, { type: ROUTE_TABLE, name: 'default/web' }]);
  });

  it('sends nothing for a snapshot that changes nothing for this agent, and counts it as applied', () => {
    const s = session();
    s.answer(ack(s.offer(group(1, base))!));
    expect(s.offer(group(4, base))).toBeUndefined(); // same version: a later revision, same content
    expect(s.appliedRevision).toBe(1);
    // Different group version (e.g. a resource came and went), same content for the agent.
    expect(s.offer(group(6, [...base].reverse()))).toBeUndefined();
    expect(s.appliedRevision).toBe(6);
    expect(s.lag).toBe(0);
  });

  it('does not resend a rejected version; sends again when the version changes', () => {
    const s = session();
    const first = s.offer(group(1, base))!;
    const { response } = s.answer(nack(first, table, 'invalid regex'));
    expect(response).toBeUndefined();
    expect(s.nacks()).toEqual([{ kind: 'Route', name: 'default/shop', version: table.version, message: 'invalid regex' }]);
    // Another change: the rejected route table stays out of the response.
    const next = s.offer(group(2, [served(CLUSTER, 'default/api', 'c2'), endpoints, table, listener]))!;
    expect(names(next)).toEqual(['CLUSTER default/api']);
    s.answer(ack(next));
    expect(s.nacks()).toHaveLength(1);
    // The route table changes: it is sent again, and the old rejection no longer counts.
    const fixed = served(ROUTE_TABLE, 'default/web', 'r2', { kind: 'Route', namespace: 'default', name: 'shop' });
    const retry = s.offer(group(3, [served(CLUSTER, 'default/api', 'c2'), endpoints, fixed, listener]))!;
    expect(names(retry)).toEqual(['ROUTE_TABLE default/web']);
    expect(s.nacks()).toEqual([]);
    s.answer(ack(retry));
    expect(s.appliedRevision).toBe(3);
  });

  it('reports the sources the agent names, else the translator’s', () => {
    const s = session();
    const first = s.offer(group(1, base))!;
    s.answer(nack(first, listener, 'port in use', true));
    expect(s.nacks()).toEqual([{ kind: 'Route', name: 'default/other', version: listener.version, message: 'port in use' }]);
  });

  it('resends a rejected resource that was reverted to a version the agent accepts', () => {
    const s = session();
    s.answer(ack(s.offer(group(1, base))!));
    const bad = served(CLUSTER, 'default/api', 'bad');
    const r = s.offer(group(2, [bad, endpoints, table, listener]))!;
    s.answer(nack(r, bad));
    expect(s.nacks()).toHaveLength(1);
    // Reverted to what the agent holds: nothing to send, nothing rejected.
    expect(s.offer(group(3, base))).toBeUndefined();
    expect(s.nacks()).toEqual([]);
    expect(s.appliedRevision).toBe(3);
  });

  it('ignores answers to responses that are not in flight, and errors for resources not sent', () => {
    const s = session();
    const first = s.offer(group(1, base))!;
    expect(s.answer(DiscoveryRequest.fromPartial({ responseNonce: 'old' })).ignored).toMatch(/nonce "old"/);
    expect(s.waiting).toBe(true);
    const result = s.answer(nack(first, served(LISTENER, 'default/nope')));
    expect(result.unknownErrors).toEqual(['RESOURCE_TYPE_LISTENER default/nope: bad']);
    expect(s.waiting).toBe(false);
    expect(s.answer(ack(first)).ignored).toBeDefined();
  });
});
