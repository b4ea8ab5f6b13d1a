// The chart's default install (test/deploy/golden/helm-default.yaml, the same objects as the
// kustomize base), run for real on loopback: each container's own args, with only what a
// cluster would provide put in by hand — the downward API ($(POD_NAME), $(POD_IP)), DNS names
// and fixed ports mapped to 127.0.0.1 and free ports, volumes to temp dirs. Three etcd
// members must form one cluster from their --initial-cluster, two controllers must elect one
// leader on it, an agent must register and become ready, and every probe must answer 200.
// No cluster is needed; what is left out is Kubernetes itself (scheduling, Services, the
// kubelet running the probes).
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { createTestPki, freePort, ManagedProcess, runSluicectl, sluiceBin, startEtcd, tempDir } from '@sluice/testing';
import { containers, find, parseManifests, run, type K8sObject } from './k8s.js';

// Three etcd members, two controllers and an agent with two workers on a busy 2-core machine.
vi.setConfig({ testTimeout: 180_000 });

/** GET over HTTP, or HTTPS trusting `ca` (a private CA, as the chart's Secret holds). */
function get(url: string, ca?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, { ca, timeout: 2_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url}: timed out`)));
    request.on('error', reject);
    request.end();
  });
}

/** Polls `url` until it answers 200 (etcd and the admin ports have no other readiness signal). */
async function until200(url: string, proc: ManagedProcess, timeoutMs = 60_000, ca?: Buffer): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!proc.running) throw new Error(`${proc.command} exited before ${url} answered\n${proc.output()}`);
    try {
      const response = await get(url, ca);
      if (response.status === 200) return response.body;
      last = `${response.status} ${response.body}`;
    } catch (error) {
      last = String(error);
    }
    await delay(100);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms: ${last}\n${proc.output()}`);
}

function env(container: Record<string, any>, name: string): string | undefined {
  return ((container.env ?? []) as { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[]).find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
}

/** The status codes of the container's liveness and readiness probes, sent where its `port` listens. */
async function probesAnswer(container: Record<string, any>, base: string, port: string, ca?: Buffer): Promise<number[]> {
  const codes: number[] = [];
  for (const probe of [container.livenessProbe, container.readinessProbe]) {
    expect(probe.httpGet.port).toBe(port);
    // The kubelet speaks the probe's scheme; the URL must too.
    expect(probe.httpGet.scheme ?? 'HTTP').toBe(base.startsWith('https:') ? 'HTTPS' : 'HTTP');
    codes.push((await get(`${base}${probe.httpGet.path as string}`, ca)).status);
  }
  return codes;
}

describe('installs run on loopback', () => {
  it('etcd forms a 3-member cluster, 2 controllers elect one leader on it, an agent registers and becomes ready', async () => {
    const objects: K8sObject[] = parseManifests(await readFile(join(import.meta.dirname, 'golden/helm-default.yaml'), 'utf8'));
    const etcdSet = find(objects, 'StatefulSet', 'sluice-etcd');
    const etcd = containers(etcdSet)[0]!;
    const service = etcdSet.spec.serviceName as string;
    const members = Array.from({ length: etcdSet.spec.replicas as number }, (_, i) => `${etcdSet.metadata.name}-${i}`);
    expect(env(etcd, 'POD_NAME')).toBe('metadata.name');

    // DNS: <member>.<headless service>:<port> -> 127.0.0.1:<free port of that member>.
    const ports = new Map<string, { client: number; peer: number }>();
    for (const m of members) ports.set(m, { client: await freePort(), peer: await freePort() });
    const resolve = (text: string): string =>
      text.replace(new RegExp(`http://(${etcdSet.metadata.name}-\\d+)\\.${service}:(2379|2380)`, 'g'), (_, member: string, port: string) => {
        const p = ports.get(member);
        if (!p) throw new Error(`${member} is not a member of the StatefulSet`);
        return `http://127.0.0.1:${port === '2379' ? p.client : p.peer}`;
      });

    await using dir = await tempDir('sluice-loopback-');
    const processes: ManagedProcess[] = [];
    try {
      for (const member of members) {
        const p = ports.get(member)!;
        const args = (etcd.args as string[]).map((a) =>
          resolve(a.replaceAll('$(POD_NAME)', member))
            // The pod listens on all its interfaces; here only on loopback, on its own ports.
            .replace('--listen-client-urls=http://0.0.0.0:2379', `--listen-client-urls=http://127.0.0.1:${p.client}`)
            .replace('--listen-peer-urls=http://0.0.0.0:2380', `--listen-peer-urls=http://127.0.0.1:${p.peer}`)
            // The volumeClaimTemplate "data" is mounted at /var/lib/etcd.
            .replace('--data-dir=/var/lib/etcd/', `--data-dir=${dir.path}/${member}/`),
        );
        expect(args.filter((a) => /0\.0\.0\.0|\/var\/lib|\$\(/.test(a)), member).toEqual([]);
        processes.push(new ManagedProcess(existsSync('/usr/bin/etcd') ? '/usr/bin/etcd' : 'etcd', [...args, '--log-level=error']));
      }
      // Every member answers /health only once a quorum formed from --initial-cluster.
      for (const [i, member] of members.entries()) {
        expect(JSON.parse(await until200(`http://127.0.0.1:${ports.get(member)!.client}/health`, processes[i]!))).toMatchObject({ health: 'true' });
      }
      const list = await fetch(`http://127.0.0.1:${ports.get(members[0]!)!.client}/v3/cluster/member/list`, { method: 'POST', body: '{}' });
      const listed = ((await list.json()) as { members: { name: string }[] }).members.map((m) => m.name).sort();
      expect(listed).toEqual(members);
      expect(await probesAnswer(etcd, `http://127.0.0.1:${ports.get(members[0]!)!.client}`, 'client')).toEqual([200, 200]);

      // Controllers: the Deployment's args, the downward API filled in, ports made free.
      const controllerDeployment = find(objects, 'Deployment', 'sluice-controller');
      const controller = containers(controllerDeployment)[0]!;
      expect([env(controller, 'POD_NAME'), env(controller, 'POD_IP')]).toEqual(['metadata.name', 'status.podIP']);
      const controllers: { name: string; admin: string; grpc: string; process: ManagedProcess }[] = [];
      for (let i = 0; i < (controllerDeployment.spec.replicas as number); i++) {
        const name = `sluice-controller-${i}`;
        const adminPort = await freePort();
        const grpcPort = await freePort();
        const args = (controller.args as string[]).map((a) =>
          resolve(a)
            .replaceAll('$(POD_NAME)', name)
            .replaceAll('$(POD_IP)', '127.0.0.1')
            .replace(/^--admin-addr=0\.0\.0\.0:\d+$/, `--admin-addr=127.0.0.1:${adminPort}`)
            .replace(/^--grpc-addr=0\.0\.0\.0:\d+$/, `--grpc-addr=127.0.0.1:${grpcPort}`)
            .replace(/^(--advertise-addr=127\.0\.0\.1):\d+$/, `$1:${grpcPort}`),
        );
        expect(args.filter((a) => /0\.0\.0\.0|\$\(|sluice-etcd/.test(a)), name).toEqual([]);
        const proc = new ManagedProcess(process.execPath, [sluiceBin, ...args]);
        processes.push(proc);
        controllers.push({ name, admin: `http://127.0.0.1:${adminPort}`, grpc: `127.0.0.1:${grpcPort}`, process: proc });
      }
      for (const c of controllers) expect(await until200(`${c.admin}/readyz`, c.process)).toBe('ok');
      // Exactly one leader, and both replicas agree which.
      let leaders: { id: string; leader: boolean; leaderId: string }[] = [];
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        leaders = await Promise.all(controllers.map(async (c) => (await (await fetch(`${c.admin}/leader`)).json()) as { id: string; leader: boolean; leaderId: string }));
        if (leaders.filter((l) => l.leader).length === 1 && leaders.every((l) => l.leaderId === leaders.find((x) => x.leader)!.id)) break;
        await delay(200);
      }
      expect(leaders.filter((l) => l.leader)).toHaveLength(1);
      expect(new Set(leaders.map((l) => l.leaderId))).toEqual(new Set([leaders.find((l) => l.leader)!.id]));
      expect(leaders.map((l) => l.id).sort()).toEqual(controllers.map((c) => c.name));
      expect(await probesAnswer(controller, controllers[0]!.admin, 'admin')).toEqual([200, 200]);

      // An agent: the Service name of the controllers stands for one of their addresses.
      const agent = containers(find(objects, 'Deployment', 'sluice-agent'))[0]!;
      const agentAdminPort = await freePort();
      const agentArgs = (agent.args as string[]).map((a) =>
        a
          .replace(/^--controller=sluice-controller\.[a-z0-9-]+\.svc:\d+$/, `--controller=${controllers[1]!.grpc}`)
          .replaceAll('$(POD_NAME)', 'sluice-agent-0')
          .replace(/^--admin-addr=0\.0\.0\.0:\d+$/, `--admin-addr=127.0.0.1:${agentAdminPort}`)
          .replace('--cache-dir=/var/cache/sluice', `--cache-dir=${dir.path}/agent-cache`),
      );
      expect(agentArgs.filter((a) => /0\.0\.0\.0|\$\(|\.svc|\/var\//.test(a))).toEqual([]);
      const agentProcess = new ManagedProcess(process.execPath, [sluiceBin, ...agentArgs]);
      processes.push(agentProcess);
      expect(await until200(`http://127.0.0.1:${agentAdminPort}/readyz`, agentProcess)).toMatch(/^ok: configuration applied from the controller/);
      const agents = await runSluicectl(['get', 'agents', '-o', 'name'], { server: controllers[0]!.admin });
      expect(agents.stderr).toBe('');
      expect(agents.stdout).toContain('sluice-agent-0');
      expect(await probesAnswer(agent, `http://127.0.0.1:${agentAdminPort}`, 'admin')).toEqual([200, 200]);
    } finally {
      await Promise.all(processes.reverse().map((p) => p[Symbol.asyncDispose]()));
    }
  });
  it('HA values: controllers and an agent talk mTLS and serve the admin API over HTTPS with the one Secret', async () => {
    const objects: K8sObject[] = parseManifests(await readFile(join(import.meta.dirname, 'golden/helm-ha.yaml'), 'utf8'));
    const controllerDeployment = find(objects, 'Deployment', '-controller');
    const controller = containers(controllerDeployment)[0]!;
    const agent = containers(find(objects, 'DaemonSet', '-agent'))[0]!;
    const secretName = (controllerDeployment.spec.template.spec.volumes as { name: string; secret?: { secretName: string } }[]).find((v) => v.name === 'tls')!.secret!.secretName;
    const mountPath = (controller.volumeMounts as { name: string; mountPath: string }[]).find((m) => m.name === 'tls')!.mountPath;

    await using dir = await tempDir('sluice-loopback-tls-');
    // The Secret, as cert-manager would write it: one certificate for the controllers (server)
    // and the agents (client), so with both usages; its SANs cover what agents dial here.
    const pki = await createTestPki(dir.path);
    const secret = join(dir.path, secretName);
    await mkdir(secret);
    // Agents check the controller Service name the chart renders (--tls-server-name), whatever address they dial.
    const serverName = (agent.args as string[]).find((a) => a.startsWith('--tls-server-name='))?.slice('--tls-server-name='.length);
    expect(serverName).toMatch(/^[a-z0-9-]+-controller\.[a-z0-9-]+\.svc$/);
    await writeFile(join(dir.path, 'leaf.ext'), `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:${serverName}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(secret, 'tls.key'), '-out', join(dir.path, 'leaf.csr'), '-subj', '/CN=sluice']);
    await run('openssl', ['x509', '-req', '-in', join(dir.path, 'leaf.csr'), '-CA', pki.ca.cert, '-CAkey', pki.ca.key, '-CAcreateserial', '-out', join(secret, 'tls.crt'), '-days', '1', '-extfile', join(dir.path, 'leaf.ext')]);
    await copyFile(pki.ca.cert, join(secret, 'ca.crt'));
    const ca = await readFile(join(secret, 'ca.crt'));

    // One etcd member stands in for the bundled cluster (the default-values test runs that).
    await using etcd = await startEtcd();
    const adminPort = await freePort();
    const grpcPort = await freePort();
    const controllerArgs = (controller.args as string[]).map((a) =>
      a
        .replace(/^--etcd-endpoints=.*$/, `--etcd-endpoints=${etcd.endpoint}`)
        .replaceAll('$(POD_NAME)', 'edge-sluice-controller-0')
        .replaceAll('$(POD_IP)', '127.0.0.1')
        .replace(/^--admin-addr=0\.0\.0\.0:\d+$/, `--admin-addr=127.0.0.1:${adminPort}`)
        .replace(/^--grpc-addr=0\.0\.0\.0:\d+$/, `--grpc-addr=127.0.0.1:${grpcPort}`)
        .replace(/^(--advertise-addr=127\.0\.0\.1):\d+$/, `$1:${grpcPort}`)
        .replaceAll(mountPath, secret),
    );
    expect(controllerArgs.filter((a) => a.startsWith('--grpc-tls-') || a.startsWith('--admin-tls-'))).toHaveLength(5);
    const processes: ManagedProcess[] = [];
    try {
      const controllerProcess = new ManagedProcess(process.execPath, [sluiceBin, ...controllerArgs]);
      processes.push(controllerProcess);
      const admin = `https://127.0.0.1:${adminPort}`;
      expect(await until200(`${admin}/readyz`, controllerProcess, 60_000, ca)).toBe('ok');
      expect(await probesAnswer(controller, admin, 'admin', ca)).toEqual([200, 200]);

      const agentAdminPort = await freePort();
      const agentArgs = (agent.args as string[]).map((a) =>
        a
          .replace(/^--controller=[a-z0-9-]+-controller\.[a-z0-9-]+\.svc:\d+$/, `--controller=127.0.0.1:${grpcPort}`)
          .replaceAll('$(NODE_NAME)', 'node-a')
          .replace(/^--admin-addr=0\.0\.0\.0:\d+$/, `--admin-addr=127.0.0.1:${agentAdminPort}`)
          .replace('--cache-dir=/var/cache/sluice', `--cache-dir=${dir.path}/agent-cache`)
          .replaceAll(mountPath, secret),
      );
      expect(agentArgs.filter((a) => a.startsWith('--tls-'))).toHaveLength(4);
      // Everything the agent dials or reads is local now; the server name stays the Service's.
      expect(agentArgs.filter((a) => !a.startsWith('--tls-server-name=') && /0\.0\.0\.0|\$\(|\.svc|\/etc\/|\/var\//.test(a))).toEqual([]);
      const agentProcess = new ManagedProcess(process.execPath, [sluiceBin, ...agentArgs]);
      processes.push(agentProcess);
      // Ready means a configuration came over the mutual-TLS discovery stream.
      expect(await until200(`http://127.0.0.1:${agentAdminPort}/readyz`, agentProcess)).toMatch(/^ok: configuration applied from the controller/);
      expect(await probesAnswer(agent, `http://127.0.0.1:${agentAdminPort}`, 'admin')).toEqual([200, 200]);

      // NOTES' in-pod command: sluicectl trusts the Secret's CA through NODE_EXTRA_CA_CERTS.
      const agents = await runSluicectl(['get', 'agents', '-o', 'name'], { server: admin, env: { NODE_EXTRA_CA_CERTS: join(secret, 'ca.crt') } });
      expect(agents.stderr).toBe('');
      expect(agents.stdout).toContain('node-a');
    } finally {
      await Promise.all(processes.reverse().map((p) => p[Symbol.asyncDispose]()));
    }
  });
});
