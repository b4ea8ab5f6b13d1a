import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseYamlDocuments } from '@sluice/api';
import { ControllerProcess, repoRoot, runSluicectl, startEtcd, tempDir } from '@sluice/testing';

// The acceptance path, with real processes: a controller on each store, the real
// `sluicectl`, every example in ../shared/api applied, re-applied, round-tripped through
// `get -o yaml`, and nothing lost across restarts of the controller (and of etcd).

const examples = resolve(repoRoot, '../shared/api');
const KINDS = ['listeners', 'routes', 'tcproutes', 'udproutes', 'upstreams', 'secrets'];

async function dumpAll(server: string): Promise<string> {
  const parts: string[] = [];
  for (const kind of KINDS) {
    const result = await runSluicectl(['get', kind, '-A', '-o', 'yaml'], { server });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    parts.push(result.stdout);
  }
  return parts.join('---\n');
}

/** Objects keyed by kind/namespace/name, without status (the controller may update it at any time). */
function desiredState(yaml: string): Map<string, unknown> {
  const parsed = parseYamlDocuments(yaml, 'dump');
  if (!parsed.ok) throw new Error(parsed.error);
  const out = new Map<string, unknown>();
  for (const { object } of parsed.docs) {
    const { status: _status, metadata, ...rest } = object as { kind: string; status?: unknown; metadata: Record<string, unknown> };
    const { resourceVersion: _rv, ...meta } = metadata;
    out.set(`${rest.kind}/${String(meta.namespace)}/${String(meta.name)}`, { ...rest, metadata: meta });
  }
  return out;
}

async function applyExamplesAndRoundTrip(server: string): Promise<void> {
  const created = await runSluicectl(['apply', '-f', examples], { server });
  expect(created.stderr).toBe('');
  expect(created.code).toBe(0);
  const lines = created.stdout.trim().split('\n');
  expect(lines.length).toBeGreaterThanOrEqual(12);
  expect(lines.every((l) => l.endsWith(' created'))).toBe(true);

  const again = await runSluicectl(['apply', '-f', examples], { server });
  expect(again.code).toBe(0);
  expect(again.stdout.trim().split('\n').every((l) => l.endsWith(' unchanged'))).toBe(true);

  // Round trip: what `get -o yaml` prints applies as unchanged.
  const dump = await dumpAll(server);
  const reapplied = await runSluicectl(['apply', '-f', '-'], { server, input: dump });
  expect(reapplied.stderr).toBe('');
  expect(reapplied.code).toBe(0);
  const reappliedLines = reapplied.stdout.trim().split('\n');
  expect(reappliedLines).toHaveLength(lines.length);
  expect(reappliedLines.every((l) => l.endsWith(' unchanged'))).toBe(true);
}

describe('config path on the embedded store', () => {
  it('applies every shared example, re-applies as unchanged, round-trips, and survives a restart', async () => {
    await using dir = await tempDir();
    await using controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path });
    await applyExamplesAndRoundTrip(controller.url);
    const before = desiredState(await dumpAll(controller.url));

    await controller.restart();
    const after = desiredState(await dumpAll(controller.url));
    expect(after).toEqual(before);
    const again = await runSluicectl(['apply', '-f', examples], { server: controller.url });
    expect(again.stdout.trim().split('\n').every((l) => l.endsWith(' unchanged'))).toBe(true);
  });
});

describe('config path on etcd', () => {
  it('applies every shared example, round-trips, and loses nothing across controller and etcd restarts', async () => {
    await using etcd = await startEtcd();
    await using controller = await ControllerProcess.start({ store: 'etcd', etcdEndpoints: etcd.endpoint });
    await applyExamplesAndRoundTrip(controller.url);
    const before = desiredState(await dumpAll(controller.url));

    await controller.restart();
    expect(desiredState(await dumpAll(controller.url))).toEqual(before);

    await etcd.stop();
    // With etcd down the controller stays up and says which store is missing.
    const down = await runSluicectl(['get', 'upstreams'], { server: controller.url });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/etcd at http:\/\/127\.0\.0\.1:\d+/);
    const ready = await fetch(`${controller.url}/readyz`);
    expect(ready.status).toBe(503);

    await etcd.start();
    expect(desiredState(await dumpAll(controller.url))).toEqual(before);
  }, 90_000); // two controller and one etcd restart: slow on a loaded 2-core machine
});
