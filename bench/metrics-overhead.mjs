// CPU cost of the agent's per-request metrics, request id and access-log bookkeeping
// (metrics/data-plane-metrics.ts: ListenerStats.start, RequestRecord.tried/finish) against
// fake request/response objects, so the figure does not depend on sockets or load.
// Usage: npm run build && node bench/metrics-overhead.mjs
import { EventEmitter } from 'node:events';
import { DataPlaneMetrics } from '../packages/agent/dist/metrics/data-plane-metrics.js';
const m = new DataPlaneMetrics();
const stats = m.listener('default/web');
const route = { name: 'default/r/rule/0/match/0', source: { namespace: 'default', name: 'r' } };
const endpoint = { address: '127.0.0.1', port: 8080 };
class Res extends EventEmitter { headersSent = true; statusCode = 200; setHeader() {} }
const socket = { bytesWritten: 0, remoteAddress: '127.0.0.1' };
function one(withId) {
  const req = { headers: withId ? { 'x-request-id': 'abc-123' } : {}, socket, method: 'GET', url: '/', httpVersion: '1.1' };
  const res = new Res();
  const r = stats.start(req, res);
  r.route = route; r.upstream = 'default/o'; r.tried('default/o', endpoint, 1.2);
  res.emit('close');
}
function base() { const _req = { headers: {}, socket, method: 'GET', url: '/', httpVersion: '1.1' }; const res = new Res(); res.emit('close'); }
for (const [name, fn] of [['baseline (fake req/res only)', base], ['metrics, generated id', () => one(false)], ['metrics, client id', () => one(true)]]) {
  for (let i = 0; i < 200000; i++) fn();
  const n = 1_000_000; const t = process.cpuUsage(); for (let i = 0; i < n; i++) fn(); const d = process.cpuUsage(t);
  console.log(name, ((d.user + d.system) * 1000 / n).toFixed(0), 'ns/request (CPU)');
}
