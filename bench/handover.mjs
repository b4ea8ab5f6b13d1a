#!/usr/bin/env node
// Leader handover time: two controllers on one etcd; SIGKILL the leader (no resign, so its
// lease has to expire) and time from the kill to the other's "became leader" log line (the
// line's own timestamp, same host clock). The killed one is restarted as the new follower
// before the next round. Expect a little under one TTL (the dead leader's last keepalive
// was at most TTL/4 before the kill) plus etcd's lease-expiry check (~0.5 s); bound: 2 TTL.
//
// Usage: node bench/handover.mjs [--rounds 5] [--ttl 2s,10s]   (after `npx tsc -b`)
import { parseArgs } from 'node:util';
import { ControllerProcess, startEtcd } from '../packages/testing/dist/index.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, ttl: { type: 'string', default: '2s,10s' } } });
const rounds = Number(values.rounds);

const leaderOf = async (c) => (await fetch(`${c.url}/leader`)).json();
const became = (l) => l.includes('"became leader"');

async function measure(ttl) {
  const etcd = await startEtcd();
  const args = (id) => ({ store: 'etcd', etcdEndpoints: etcd.endpoint, extraArgs: ['--leader-lease-ttl', ttl, '--id', id] });
  const controllers = [await ControllerProcess.start(args('ctl-a')), await ControllerProcess.start(args('ctl-b'))];
  const samples = [];
  try {
    for (let round = 0; round < rounds; round++) {
      // Wait until one leads and the other has seen it (is watching the key).
      let leader, follower;
      for (;;) {
        const states = await Promise.all(controllers.map(leaderOf));
        const i = states.findIndex((s) => s.leader);
        if (i >= 0 && states[1 - i].leaderId === states[i].id) {
          [leader, follower] = [controllers[i], controllers[1 - i]];
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      const seen = new Set(follower.process.stdoutLines.filter(became));
      const killedAt = Date.now();
      await leader.process.stop('SIGKILL');
      const line = await follower.process.waitForLine((l) => became(l) && !seen.has(l), 60_000);
      samples.push(Date.parse(JSON.parse(line).time) - killedAt);
      await leader.restart();
    }
  } finally {
    await Promise.all(controllers.map((c) => c.stop()));
    await etcd[Symbol.asyncDispose]();
  }
  return samples;
}

console.log(`leader handover after SIGKILL of the leader, ${rounds} rounds per TTL`);
console.log('TTL    samples (ms)                              p50 (ms)  max (ms)  bound 2xTTL (ms)');
for (const ttl of values.ttl.split(',')) {
  const samples = await measure(ttl);
  const sorted = [...samples].sort((a, b) => a - b);
  const p50 = sorted[Math.floor((sorted.length - 1) / 2)];
  const max = sorted.at(-1);
  const bound = 2 * Number.parseFloat(ttl) * 1000;
  console.log(`${ttl.padEnd(6)} ${samples.join(', ').padEnd(41)} ${String(p50).padStart(8)}  ${String(max).padStart(8)}  ${String(bound).padStart(16)}${max <= bound ? '' : '  OVER'}`);
}
