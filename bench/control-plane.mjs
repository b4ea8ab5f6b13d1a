#!/usr/bin/env node
// Control-plane propagation: time from `apply` to each agent's ACK, for fleets of 2 and 50
// agents (real `sluice agent` processes on loopback, one controller on the embedded store).
//
// Usage: node bench/control-plane.mjs [--agents 2,50] [--rounds 20]     (needs `npm run build`)
//
// Each round applies a change to an Upstream's endpoint weights (a change every agent must
// receive) and reads, from the controller's debug log, when each agent acknowledged the
// response carrying it. Times are wall-clock on one machine: apply start -> ACK received.
import { parseArgs } from 'node:util';
import { AgentProcess, ControllerProcess, freePort, tempDir } from '../packages/testing/dist/index.js';

const { values } = parseArgs({ options: { agents: { type: 'string', default: '2,50' }, rounds: { type: 'string', default: '20' } } });
const fleetSizes = values.agents.split(',').map(Number);
const rounds = Number(values.rounds);

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function measure(agentCount) {
  // Node 20 has no `await using` outside TypeScript: dispose in finally.
  const dir = await tempDir('sluice-bench-');
  const controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, extraArgs: ['--log-level', 'debug'] });
  const port = await freePort();
  const agents = [];
  try {
    // Start agents a few at a time: 2 cores.
    for (let i = 0; i < agentCount; i += 10) {
      const batch = [];
      for (let j = i; j < Math.min(agentCount, i + 10); j++) {
        batch.push(AgentProcess.start({ controller: controller.grpcAddress, id: `bench-${j}`, listenAddress: `127.0.1.${j + 1}`, workers: 1 }));
      }
      agents.push(...(await Promise.all(batch)));
    }
    const apply = async (weight) => {
      const body = {
        apiVersion: 'sluice/v1',
        kind: 'List',
        items: [
          { apiVersion: 'sluice/v1', kind: 'Listener', metadata: { name: 'web' }, spec: { port, protocol: 'HTTP' } },
          {
            apiVersion: 'sluice/v1',
            kind: 'Upstream',
            metadata: { name: 'shop' },
            spec: { endpoints: [{ address: '127.0.0.1', port: 9001, weight }, { address: '127.0.0.1', port: 9002, weight: 1 }] },
          },
          { apiVersion: 'sluice/v1', kind: 'Route', metadata: { name: 'shop' }, spec: { parentRefs: [{ name: 'web' }], rules: [{ backendRefs: [{ name: 'shop' }] }] } },
        ],
      };
      const response = await fetch(`${controller.url}/apis/sluice/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const result = await response.json();
      return Math.max(...result.items.map((i) => Number(i.object.metadata.resourceVersion)));
    };
    await apply(1);
    await Promise.all(agents.map((a) => a.ready(60_000)));

    const perAgent = [];
    const fleet = [];
    for (let round = 0; round < rounds; round++) {
      const logStart = controller.process.stdoutLines.length;
      const t0 = Date.now();
      const revision = await apply(round + 2);
      // Nonce -> revision from "sending response"; ACK time from "agent answered".
      const acked = new Map();
      const nonceRevision = new Map();
      await controller.process.waitForLine(() => {
        const lines = controller.process.stdoutLines.slice(logStart);
        for (const line of lines) {
          if (!line.includes('"sending response"') && !line.includes('"agent answered"')) continue;
          const e = JSON.parse(line);
          if (e.message === 'sending response') nonceRevision.set(e.nonce, e.revision);
          else if ((nonceRevision.get(e.nonce) ?? 0) >= revision && !acked.has(e.id)) acked.set(e.id, Date.parse(e.time) - t0);
        }
        return acked.size >= agentCount;
      }, 60_000).catch(() => undefined);
      if (acked.size < agentCount) throw new Error(`round ${round}: only ${acked.size}/${agentCount} agents acknowledged`);
      perAgent.push(...acked.values());
      fleet.push(Math.max(...acked.values()));
    }
    perAgent.sort((a, b) => a - b);
    fleet.sort((a, b) => a - b);
    return { agentCount, perAgent, fleet };
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await controller.stop();
    await dir[Symbol.asyncDispose]();
  }
}

console.log(`control-plane propagation, ${rounds} rounds per fleet size (apply -> ACK, ms)`);
console.log('agents  per-agent p50  per-agent p99  all-agents p50  all-agents p99');
for (const n of fleetSizes) {
  const { perAgent, fleet } = await measure(n);
  console.log(
    `${String(n).padStart(6)}  ${String(percentile(perAgent, 50)).padStart(13)}  ${String(percentile(perAgent, 99)).padStart(13)}  ${String(percentile(fleet, 50)).padStart(14)}  ${String(percentile(fleet, 99)).padStart(14)}`,
  );
}
