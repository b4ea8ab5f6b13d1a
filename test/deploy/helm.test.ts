// The Helm chart rendered by helm/render (text/template + sprig + Helm's builtins, built here
// from Debian's Go packages because no Helm binary exists on these machines): goldens for the
// default and HA values, every document validated against the Kubernetes schemas, and the
// chart's promises checked on the objects (flags the real binaries document, probes, etcd
// membership, TLS wiring, PDBs). UPDATE_GOLDEN=1 rewrites the goldens.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runSluicectl, tempDir, type TempDir } from '@sluice/testing';
import { containers, documentedFlags, find, flag, golden, parseManifests, repoRoot, run, sluiceInvariants, validateManifests, type K8sObject } from './k8s.js';

// Rendering, kubectl and the TypeScript schema check take seconds each on a busy 2-core machine.
vi.setConfig({ testTimeout: 120_000 });

const chart = join(repoRoot, 'helm/sluice');
let dir: TempDir;
let renderer: string;
let controllerFlags: Set<string>;
let agentFlags: Set<string>;

beforeAll(async () => {
  dir = await tempDir('sluice-helm-');
  renderer = join(dir.path, 'helm-render');
  await run('bash', [join(repoRoot, 'helm/render/build.sh'), renderer], { timeout: 240_000 });
  [controllerFlags, agentFlags] = await Promise.all([documentedFlags('controller'), documentedFlags('agent')]);
}, 300_000);

afterAll(async () => {
  await dir?.[Symbol.asyncDispose]();
});

async function render(args: string[], values?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const extra: string[] = [];
  if (values !== undefined) {
    const file = join(dir.path, `values-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, values);
    extra.push('-f', file);
  }
  try {
    const { stdout, stderr } = await run(renderer, [...args, ...extra, chart]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function renderOk(args: string[], values?: string): Promise<string> {
  const r = await render(args, values);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

describe.each([
  { name: 'default values', args: ['--name', 'sluice', '--namespace', 'sluice'], golden: 'helm-default.yaml' },
  { name: 'ci/ha-values.yaml', args: ['--name', 'edge', '--namespace', 'sluice-system', '-f', join(chart, 'ci/ha-values.yaml')], golden: 'helm-ha.yaml' },
])('helm chart with $name', ({ args, golden: goldenName }) => {
  let text: string;
  let objects: K8sObject[];
  beforeAll(async () => {
    text = await renderOk(args);
    objects = parseManifests(text);
  });

  it('matches the golden output', async () => {
    expect(text).toBe(await golden(goldenName, text));
  });

  it('renders only documents that validate against the Kubernetes schemas', async () => {
    expect(objects.length).toBeGreaterThanOrEqual(9);
    expect(await validateManifests(objects)).toEqual([]);
  });

  it('keeps the promises of a Sluice install (flags, probes, etcd membership, selectors)', () => {
    expect(sluiceInvariants(objects, controllerFlags, agentFlags)).toEqual([]);
  });

  it('has a PodDisruptionBudget for etcd (a quorum) and the controllers', () => {
    const etcd = find(objects, 'StatefulSet', '-etcd');
    const pdb = find(objects, 'PodDisruptionBudget', '-etcd');
    expect(pdb.spec.minAvailable).toBe(Math.floor(etcd.spec.replicas / 2) + 1);
    expect(find(objects, 'PodDisruptionBudget', '-controller').spec.minAvailable).toBeGreaterThanOrEqual(1);
  });
});

describe('helm chart values', () => {
  it('defaults: 3 etcd members, 2 controllers, 2 agents in a Deployment with a PDB, no TLS', async () => {
    const objects = parseManifests(await renderOk([]));
    expect(find(objects, 'StatefulSet', 'sluice-etcd').spec.replicas).toBe(3);
    expect(find(objects, 'Deployment', 'sluice-controller').spec.replicas).toBe(2);
    const agent = find(objects, 'Deployment', 'sluice-agent');
    expect(agent.spec.replicas).toBe(2);
    expect(find(objects, 'PodDisruptionBudget', 'sluice-agent').spec.maxUnavailable).toBe(1);
    expect(flag(containers(agent)[0]!, 'controller')).toBe('sluice-controller.default.svc:9081');
    expect(JSON.stringify(objects)).not.toContain('tls');
  });

  it('HA values: a DaemonSet on the host network with mTLS from the Secret, no agent PDB', async () => {
    const objects = parseManifests(await renderOk(['-f', join(chart, 'ci/ha-values.yaml')]));
    const agent = find(objects, 'DaemonSet', 'sluice-agent');
    expect(objects.some((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === 'sluice-agent')).toBe(false);
    expect(agent.spec.template.spec.hostNetwork).toBe(true);
    const a = containers(agent)[0]!;
    expect([flag(a, 'id'), flag(a, 'tls-cert'), flag(a, 'tls-key'), flag(a, 'tls-ca'), flag(a, 'labels')]).toEqual([
      '$(NODE_NAME)',
      '/etc/sluice/tls/tls.crt',
      '/etc/sluice/tls/tls.key',
      '/etc/sluice/tls/ca.crt',
      'tier=edge',
    ]);
    const controller = find(objects, 'Deployment', 'sluice-controller');
    const c = containers(controller)[0]!;
    expect([flag(c, 'grpc-tls-cert'), flag(c, 'grpc-tls-key'), flag(c, 'grpc-tls-ca')]).toEqual(['/etc/sluice/tls/tls.crt', '/etc/sluice/tls/tls.key', '/etc/sluice/tls/ca.crt']);
    // tls.adminHttps: the admin API, its probes and the scrape go over HTTPS.
    expect([flag(c, 'admin-tls-cert'), flag(c, 'admin-tls-key')]).toEqual(['/etc/sluice/tls/tls.crt', '/etc/sluice/tls/tls.key']);
    expect([c.readinessProbe.httpGet.scheme, c.livenessProbe.httpGet.scheme]).toEqual(['HTTPS', 'HTTPS']);
    expect(controller.spec.template.metadata.annotations['prometheus.io/scheme']).toBe('https');
    for (const w of [agent, controller]) {
      expect(w.spec.template.spec.volumes).toContainEqual({ name: 'tls', secret: { secretName: 'sluice-tls' } });
      expect(containers(w)[0]!.volumeMounts).toContainEqual({ name: 'tls', mountPath: '/etc/sluice/tls', readOnly: true });
    }
    expect(find(objects, 'Service', 'sluice-agent').spec).toMatchObject({ type: 'LoadBalancer', externalTrafficPolicy: 'Local' });
  });

  it('external etcd: no StatefulSet, and the controllers use the given endpoints', async () => {
    const objects = parseManifests(await renderOk([], 'etcd:\n  enabled: false\n  externalEndpoints: [http://etcd-a:2379, http://etcd-b:2379]\n'));
    expect(objects.filter((o) => o.metadata.name.includes('etcd'))).toEqual([]);
    expect(flag(containers(find(objects, 'Deployment', 'sluice-controller'))[0]!, 'etcd-endpoints')).toBe('http://etcd-a:2379,http://etcd-b:2379');
    expect(await validateManifests(objects)).toEqual([]);
  });

  it('a separate agent Secret is mounted into the agents only', async () => {
    const objects = parseManifests(await renderOk([], 'tls:\n  enabled: true\n  existingSecret: ctl-tls\n  agentExistingSecret: agent-tls\n'));
    expect(find(objects, 'Deployment', 'sluice-agent').spec.template.spec.volumes).toContainEqual({ name: 'tls', secret: { secretName: 'agent-tls' } });
    expect(find(objects, 'Deployment', 'sluice-controller').spec.template.spec.volumes).toContainEqual({ name: 'tls', secret: { secretName: 'ctl-tls' } });
  });

  it('values.yaml documents every value: a "# --" comment on it, on a section holding it, or on each of its keys', async () => {
    const lines = (await readFile(join(chart, 'values.yaml'), 'utf8')).split('\n');
    interface Key { path: string; indent: number; commented: boolean; children: Key[] }
    const root: Key = { path: '', indent: -1, commented: false, children: [] };
    const stack = [root];
    lines.forEach((line, i) => {
      const match = /^( *)([A-Za-z][\w.-]*):/.exec(line);
      if (!match) return;
      const indent = match[1]!.length;
      while (stack.at(-1)!.indent >= indent) stack.pop();
      const parent = stack.at(-1)!;
      let j = i - 1;
      while (j >= 0 && lines[j]!.trim().startsWith('#') && !lines[j]!.trim().startsWith('# --')) j--;
      const key: Key = { path: `${parent.path}${parent.path ? '.' : ''}${match[2]}`, indent, commented: lines[j]?.trim().startsWith('# --') ?? false, children: [] };
      parent.children.push(key);
      stack.push(key);
    });
    const undocumented = (key: Key): string[] => (key.commented ? [] : key.children.length === 0 ? [key.path] : key.children.flatMap(undocumented));
    expect(root.children.length).toBeGreaterThan(10);
    expect(root.children.flatMap(undocumented)).toEqual([]);
  });

  it('values.schema.json rejects bad values, naming each field', async () => {
    const r = await render([], 'agent:\n  kind: StatefulSet\n  workerz: 2\netcd:\n  replicas: 4\ncontroller:\n  grpcPort: 70000\nlogLevel: loud\n');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    for (const field of ['agent.kind', 'workerz', 'etcd.replicas', 'controller.grpcPort', 'logLevel']) expect(r.stderr).toContain(field);
  });

  it("refuses a cluster older than Chart.yaml's kubeVersion, as Helm does", async () => {
    const old = await render(['--kube-version', 'v1.24.3']);
    expect(old.code).toBe(1);
    expect(old.stderr).toContain('chart requires kubeVersion: >=1.25.0-0 which is incompatible with Kubernetes v1.24.3');
    expect((await render(['--kube-version', 'v1.25.0'])).code).toBe(0);
  });

  it('TLS without a Secret and external etcd without endpoints are refused', async () => {
    const tls = await render([], 'tls:\n  enabled: true\n');
    expect(tls.code).toBe(1);
    expect(tls.stderr).toContain('tls.existingSecret');
    const etcd = await render([], 'etcd:\n  enabled: false\n');
    expect(etcd.code).toBe(1);
    expect(etcd.stderr).toContain('etcd.externalEndpoints');
  });

  it('NOTES.txt tells how to reach sluicectl, and its sluicectl commands work', async () => {
    const notes = await renderOk(['--notes', '--name', 'prod', '--namespace', 'lb']);
    expect(notes).toContain('kubectl -n lb port-forward svc/prod-sluice-controller 9080:9080');
    const lines = notes.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('sluicectl config '));
    expect(lines).toEqual(['sluicectl config set-context prod --server http://127.0.0.1:9080 --namespace default', 'sluicectl config use-context prod']);
    await using home = await tempDir('sluice-notes-');
    const env = { HOME: home.path, SLUICE_CONFIG: join(home.path, 'config') };
    const outputs: string[] = [];
    for (const line of lines) {
      const r = await runSluicectl(line.split(' ').slice(1), { env });
      expect(r.stderr).toBe('');
      outputs.push(r.stdout);
    }
    expect(outputs).toEqual(['Context "prod" created.\n', 'Switched to context "prod".\n']);
  });
});

describe('helm/render (Helm semantics on test/deploy/fixtures/mini)', () => {
  const mini = join(repoRoot, 'test/deploy/fixtures/mini');
  const renderMini = async (args: string[], values?: string) => {
    const extra: string[] = [];
    if (values !== undefined) {
      const file = join(dir.path, `mini-${Math.random().toString(36).slice(2)}.yaml`);
      await writeFile(file, values);
      extra.push('-f', file);
    }
    try {
      return { code: 0, ...(await run(renderer, [...args, ...extra, mini])) };
    } catch (error) {
      return error as { code: number; stdout: string; stderr: string };
    }
  };

  it('coalesces values (null deletes, maps merge, lists replace), runs tpl/include/sprig, fills .Release/.Chart/.Capabilities/.Template, orders by kind', async () => {
    const r = await renderMini(['--name', 'r1', '--namespace', 'ns1'], 'nested:\n  b: null\n  c: three\n  list: [z]\n');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(EXPECTED_MINI);
  });

  it('renders NOTES.txt with --notes; required and the schema fail with their messages', async () => {
    expect((await renderMini(['--notes', '--name', 'r1'])).stdout).toBe('hello, r1!\n');
    const required = await renderMini(['--notes'], 'greeting: ""\n');
    expect([required.code, required.stdout]).toEqual([1, '']);
    expect(required.stderr).toContain('error calling required: greeting is required');
    const schema = await renderMini([], 'nested:\n  a: one\n');
    expect([schema.code, schema.stdout]).toEqual([1, '']);
    expect(schema.stderr).toContain('- nested.a: Invalid type. Expected: integer, given: string');
  });
});

// What `helm template r1 -n ns1 -f <values>` prints for the fixture: ConfigMap before Service
// (Helm's install order), no "<no value>", the false branch and the partial absent, and the
// comment-only document kept (Helm keeps it, sorted last).
const EXPECTED_MINI = `---
# Source: mini/templates/b-configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: r1-mini
  namespace: ns1
data:
  missing: ""
  greeting: "HELLO"
  chart: "1.2.3/4.5"
  install: "true/Helm"
  template: mini/templates/b-configmap.yaml
  kube: "1.31"
  policy: "true"
  b64: c2x1aWNl
  nested: |
    a: 1
    c: three
    list:
    - z
  numbers: "012"
---
# Source: mini/templates/a-service.yaml
apiVersion: v1
kind: Service
metadata:
  name: r1-from-tpl
  labels:
    app: mini
    release: r1
---
# Source: mini/templates/a-service.yaml
# only a comment: not a document
`;
