import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startEtcd } from './etcd.js';

async function put(endpoint: string, key: string, value: string): Promise<void> {
  const response = await fetch(`${endpoint}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: btoa(key), value: btoa(value) }),
  });
  expect(response.status).toBe(200);
}

async function get(endpoint: string, key: string): Promise<string | undefined> {
  const response = await fetch(`${endpoint}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: btoa(key) }) });
  const body = (await response.json()) as { kvs?: { value: string }[] };
  const value = body.kvs?.[0]?.value;
  return value === undefined ? undefined : atob(value);
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/health`);
    return response.ok;
  } catch {
    return false;
  }
}

describe('startEtcd', () => {
  it('starts a healthy etcd on loopback with its data dir under a temp dir', async () => {
    await using etcd = await startEtcd();
    expect(etcd.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(etcd.running).toBe(true);
    expect(await healthy(etcd.endpoint)).toBe(true);
    expect(existsSync(etcd.dataDir)).toBe(true);
  });

  it('restarts on the same data dir and port after stop and after kill, keeping data', async () => {
    await using etcd = await startEtcd();
    const endpoint = etcd.endpoint;
    await put(endpoint, 'k', 'v1');

    await etcd.stop();
    expect(etcd.running).toBe(false);
    expect(await healthy(endpoint)).toBe(false);
    await etcd.start();
    expect(etcd.endpoint).toBe(endpoint);
    expect(await get(endpoint, 'k')).toBe('v1');

    await put(endpoint, 'k', 'v2');
    await etcd.kill();
    expect(etcd.running).toBe(false);
    await etcd.start();
    expect(await get(endpoint, 'k')).toBe('v2');
  });

  it('dispose stops etcd and removes its data dir', async () => {
    const etcd = await startEtcd();
    const { endpoint, dataDir } = etcd;
    await etcd[Symbol.asyncDispose]();
    expect(etcd.running).toBe(false);
    expect(existsSync(dataDir)).toBe(false);
    expect(await healthy(endpoint)).toBe(false);
  });

  it('refuses to start twice', async () => {
    await using etcd = await startEtcd();
    await expect(etcd.start()).rejects.toThrow(/already running/);
  });
});
