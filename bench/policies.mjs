#!/usr/bin/env node
// Load-balancing policies under a partial slowdown: four backends, one answering 50 ms
// late; for each policy, a closed-loop load through the agents, then p50 / p99 latency and
// error rate. Shows which policies route around a slow endpoint.
//
// Usage: node bench/policies.mjs [--requests 4000] [--concurrency 16] [--agents 1]
//          [--policies RoundRobin,LeastConnections,LeastResponseTime,LeastResponseTime+dw]
// A `+dw` suffix turns on dynamic weights for that run, after `--warmup` seconds of load
// (default 8) so the controller's weight engine has converged. Needs `npm run build`.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { AgentProcess, ControllerProcess, freePort, tempDir } from '../packages/testing/dist/index.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '4000' },
    concurrency: { type: 'string', default: '16' },
    agents: { type: 'string', default: '1' },
    policies: { type: 'string', default: 'RoundRobin,WeightedRoundRobin,Random,IPHash,ConsistentHash,LeastConnections,WeightedLeastConnections,LeastResponseTime' },
    warmup: { type: 'string', default: '8' },
  },
});
const total = Number(values.requests);
const concurrency = Number(values.concurrency);
const agentCount = Number(values.agents);
const POLICIES = values.policies.split(',');
const warmupMs = Number(values.warmup) * 1000;

function backend(delayMs) {
  const server = createServer((req, res) => {
    req.resume();
    const answer = () => res.end('ok\n');
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const dir = await tempDir('sluice-bench-');
const backends = await Promise.all([0, 0, 0, 50].map(backend));
const controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, extraArgs: ['--report-interval', '250ms'] });
const agents = [];
for (let i = 0; i < agentCount; i++) {
  agents.push(await AgentProcess.start({ controller: controller.grpcAddress, id: `bench-${i}`, workers: 1, listenAddress: `127.0.0.${i + 1}` }));
}
const port = await freePort();
const pools = agents.map((_, i) => new Pool(`http://127.0.0.${i + 1}:${port}`, { connections: Math.ceil(concurrency / agentCount) }));

/** Closed-loop load, spread over the agents; records latencies and errors unless `record` is false. */
async function load(count, record) {
  const latencies = [];
  let errors = 0;
  let next = 0;
  const worker = async (w) => {
    const pool = pools[w % pools.length];
    while (next < count) {
      const i = next++;
      const start = process.hrtime.bigint();
      try {
        const { statusCode, body } = await pool.request({ path: '/', method: 'GET', headers: { 'x-user-id': `user-${i % 500}` } });
        await body.dump();
        if (statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      if (record) latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return { latencies, errors };
}

const results = [];
try {
  for (const variant of POLICIES) {
    const [policy, flag] = variant.split('+');
    const dynamic = flag === 'dw';
    const upstream = {
      apiVersion: 'sluice/v1',
      kind: 'Upstream',
      metadata: { name: 'shop' },
      spec: {
        loadBalancing: { policy, ...(policy === 'ConsistentHash' ? { consistentHash: { key: { header: 'x-user-id' } } } : {}) },
        ...(dynamic ? { dynamicWeights: { enabled: true, interval: '1s' } } : {}),
        endpoints: backends.map((b) => ({ address: '127.0.0.1', port: b.address().port, weight: 100 })),
      },
    };
    const items = [
      { apiVersion: 'sluice/v1', kind: 'Listener', metadata: { name: 'web' }, spec: { port, protocol: 'HTTP' } },
      upstream,
      { apiVersion: 'sluice/v1', kind: 'Route', metadata: { name: 'shop' }, spec: { parentRefs: [{ name: 'web' }], rules: [{ backendRefs: [{ name: 'shop' }] }] } },
    ];
    const applied = await fetch(`${controller.url}/apis/sluice/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'List', items }) });
    if (!applied.ok) throw new Error(`apply ${variant}: ${await applied.text()}`);
    const revision = Math.max(...(await applied.json()).items.map((i) => Number(i.object.metadata.resourceVersion)));
    await Promise.all(agents.map((a) => a.process.waitForLine((l) => l.includes('"configuration applied"') && JSON.parse(l).revision >= revision, 20_000)));
    if (dynamic) {
      // Let the fleet report and the weight engine converge before measuring.
      const until = Date.now() + warmupMs;
      while (Date.now() < until) await load(500, false);
    }
    const { latencies, errors } = await load(total, true);
    latencies.sort((a, b) => a - b);
    results.push({ policy: variant, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors: errors / total });
  }
} finally {
  await Promise.all(pools.map((p) => p.close()));
  await Promise.all(agents.map((a) => a.stop()));
  await controller.stop();
  await Promise.all(backends.map((b) => new Promise((r) => b.close(r))));
  await dir[Symbol.asyncDispose]();
}

console.log(`policies with one of four backends slowed by 50 ms: ${total} requests, ${concurrency} concurrent, ${agentCount} agent(s) of one worker`);
console.log('policy                      p50 (ms)   p99 (ms)   errors');
for (const r of results) {
  console.log(`${r.policy.padEnd(26)} ${r.p50.toFixed(2).padStart(9)}  ${r.p99.toFixed(2).padStart(9)}   ${(r.errors * 100).toFixed(2)} %`);
}
