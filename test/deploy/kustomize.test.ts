// The kustomize base in deploy/kubernetes, built by the real `kubectl kustomize` (kubectl is on
// these machines; scripts/ensure-test-deps.sh installs Debian's kubernetes-client where it is
// not), every document validated against the Kubernetes schemas, and the same install
// promises as the Helm chart checked on the objects.
import { readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { tempDir } from '@sluice/testing';
import { containers, documentedFlags, find, flag, parseManifests, repoRoot, run, sluiceInvariants, validateManifests, type K8sObject } from './k8s.js';

// Rendering, kubectl and the TypeScript schema check take seconds each on a busy 2-core machine.
vi.setConfig({ testTimeout: 120_000 });

const base = join(repoRoot, 'deploy/kubernetes');

describe('kustomize base deploy/kubernetes', () => {
  let objects: K8sObject[];
  let controllerFlags: Set<string>;
  let agentFlags: Set<string>;
  beforeAll(async () => {
    const { stdout } = await run('kubectl', ['kustomize', base], { timeout: 120_000 });
    objects = parseManifests(stdout);
    [controllerFlags, agentFlags] = await Promise.all([documentedFlags('controller'), documentedFlags('agent')]);
  }, 180_000);

  it('builds the namespace, etcd, controllers, agents, their Services and PDBs', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'Namespace/sluice',
        'ServiceAccount/sluice',
        'Service/sluice-etcd',
        'Service/sluice-controller',
        'Service/sluice-agent',
        'StatefulSet/sluice-etcd',
        'Deployment/sluice-controller',
        'Deployment/sluice-agent',
        'PodDisruptionBudget/sluice-etcd',
        'PodDisruptionBudget/sluice-controller',
        'PodDisruptionBudget/sluice-agent',
      ].sort(),
    );
  });

  it('puts every namespaced object in the sluice namespace and pins image tags', () => {
    for (const o of objects.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('sluice');
    const images = objects.filter((o) => o.spec?.template).flatMap((w) => containers(w).map((c) => c.image as string));
    expect(new Set(images)).toEqual(new Set(['sluice/sluice:0.1.0', 'quay.io/coreos/etcd:v3.5.17']));
  });

  it('renders only documents that validate against the Kubernetes schemas', async () => {
    expect(await validateManifests(objects)).toEqual([]);
  });

  it('keeps the promises of a Sluice install (flags, probes, etcd membership, selectors)', () => {
    expect(sluiceInvariants(objects, controllerFlags, agentFlags)).toEqual([]);
  });

  it('runs 3 etcd members, 2 controllers on etcd, and agents that find them by Service name', () => {
    expect(find(objects, 'StatefulSet', 'sluice-etcd').spec.replicas).toBe(3);
    const controller = find(objects, 'Deployment', 'sluice-controller');
    expect(controller.spec.replicas).toBe(2);
    expect(flag(containers(controller)[0]!, 'store')).toBe('etcd');
    // A short name: the base works in whatever namespace an overlay moves it to.
    expect(flag(containers(find(objects, 'Deployment', 'sluice-agent'))[0]!, 'controller')).toBe('sluice-controller:9081');
    expect(find(objects, 'PodDisruptionBudget', 'sluice-etcd').spec.minAvailable).toBe(2);
  });

  it('matches the Helm chart with default values, apart from Helm-only labels and names', async () => {
    // The chart's golden is rendered for namespace "sluice", as the base is.
    const chart = parseManifests(await readFile(join(import.meta.dirname, 'golden/helm-default.yaml'), 'utf8'));
    // kubectl sorts keys; compare with sorted keys and without what only one side has.
    const normalise = (o: K8sObject): string =>
      JSON.stringify(o, (key, value: unknown) => {
        if (key === 'helm.sh/chart' || key === 'app.kubernetes.io/managed-by' || key === 'namespace') return undefined;
        if (typeof value === 'string') return value.replace('sluice-controller.sluice.svc:', 'sluice-controller:').replace(/-etcd-sluice$/, '-etcd').replace(/:(0\.1\.0|v3\.5\.17)$/, '');
        if (value !== null && typeof value === 'object' && !Array.isArray(value)) return Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)));
        return value;
      });
    const fromChart = new Map(chart.map((o) => [`${o.kind}/${o.metadata.name}`, normalise(o)]));
    for (const o of objects.filter((x) => x.kind !== 'Namespace')) {
      const key = `${o.kind}/${o.metadata.name}`;
      expect(normalise(o), key).toBe(fromChart.get(key));
    }
  });
});

describe('an overlay on the base (the one in docs/deployment.md)', () => {
  it('moves everything to another namespace, and the short names still join up', async () => {
    await using overlay = await tempDir('sluice-overlay-');
    await writeFile(
      join(overlay.path, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: edge
resources: [${relative(overlay.path, base)}]
images:
  - {name: sluice/sluice, newName: registry.example.com/sluice, newTag: 0.1.0}
replicas:
  - {name: sluice-agent, count: 4}
patches:
  - target: {kind: Service, name: sluice-agent}
    patch: |
      - {op: replace, path: /spec/type, value: LoadBalancer}
`,
    );
    const { stdout } = await run('kubectl', ['kustomize', overlay.path], { timeout: 120_000 });
    const objects = parseManifests(stdout);
    // The base's Namespace object is renamed along with every namespaced object.
    expect(new Set(objects.map((o) => (o.kind === 'Namespace' ? o.metadata.name : o.metadata.namespace)))).toEqual(new Set(['edge']));
    expect(find(objects, 'Deployment', 'sluice-agent').spec.replicas).toBe(4);
    expect(find(objects, 'Service', 'sluice-agent').spec.type).toBe('LoadBalancer');
    expect(containers(find(objects, 'Deployment', 'sluice-controller'))[0]!.image).toBe('registry.example.com/sluice:0.1.0');
    expect(sluiceInvariants(objects, await documentedFlags('controller'), await documentedFlags('agent'))).toEqual([]);
    expect(await validateManifests(objects)).toEqual([]);
  });
});

describe('manifest validation', () => {
  const pod = (container: Record<string, unknown>): K8sObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'x' },
    spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i', ...container }] } } },
  });

  it('accepts a correct object', async () => {
    expect(await validateManifests([pod({ readinessProbe: { httpGet: { path: '/readyz', port: 9180 } } })])).toEqual([]);
  });

  it('rejects a wrong type, a misspelt field and an unknown kind, naming the object', async () => {
    const problems = await validateManifests([
      pod({ ports: [{ containerPort: 'http' }] }),
      pod({ readinesProbe: { httpGet: { path: '/readyz', port: 9180 } } }),
      { apiVersion: 'apps/v1', kind: 'Deploymint', metadata: { name: 'y' } },
    ]);
    expect(problems.some((p) => p.startsWith('Deployment/x:') && p.includes('containerPort must be integer'))).toBe(true);
    expect(problems.some((p) => p.startsWith('Deployment/x:') && p.includes('readinesProbe') && p.includes('does not exist in type'))).toBe(true);
    expect(problems).toContain('Deploymint/y: no Kubernetes schema for apiVersion apps/v1 kind Deploymint');
  });
});
