import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configPath, emptyConfig, loadConfig, normalizeServer, parseConfig, resolveConnection, saveConfig } from './config.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluicectl-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('config file', () => {
  it('is $SLUICE_CONFIG, else ~/.sluice/config', () => {
    expect(configPath({ SLUICE_CONFIG: '/x/y', HOME: '/h' })).toBe('/x/y');
    expect(configPath({ HOME: '/h' })).toBe('/h/.sluice/config');
  });

  it('reads a missing file as empty', async () => {
    expect(await loadConfig(join(dir, 'nope'))).toEqual(emptyConfig());
  });

  it('round-trips through save, creating the directory 0700 and the file 0600, keeping unknown keys', async () => {
    const path = join(dir, 'sub', 'config');
    const config = parseConfig('current-context: a\ncontexts:\n  - name: a\n    server: http://h:1\n    namespace: ns\npreferences: {color: true}\n', 'x');
    await saveConfig(path, config);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'sub'))).mode & 0o777).toBe(0o700);
    const again = await loadConfig(path);
    expect(again).toEqual(config);
    expect(again.extra).toEqual({ preferences: { color: true } });
    expect(await readFile(path, 'utf8')).toMatch(/^current-context: a\ncontexts:\n/);
  });

  it('names the file and line of a YAML error', async () => {
    const path = join(dir, 'config');
    await writeFile(path, 'contexts:\n  - name: a\n   bad: [\n');
    await expect(loadConfig(path)).rejects.toThrow(new RegExp(`^${path}:\\d+:\\d+: `));
  });

  it('rejects contexts without a name', () => {
    expect(() => parseConfig('contexts:\n  - server: x\n', 'f')).toThrow('f: contexts[0].name is required');
  });
});

describe('resolveConnection', () => {
  const config = parseConfig('current-context: prod\ncontexts:\n  - name: prod\n    server: http://prod:9080\n    namespace: shop\n', 'f');

  it('prefers --server, then SLUICE_SERVER, then the context, then the default', () => {
    expect(resolveConnection({ server: 'http://flag:1' }, { SLUICE_SERVER: 'http://env:2' }, config).server).toBe('http://flag:1');
    expect(resolveConnection({}, { SLUICE_SERVER: 'http://env:2' }, config).server).toBe('http://env:2');
    expect(resolveConnection({}, {}, config).server).toBe('http://prod:9080');
    expect(resolveConnection({}, {}, emptyConfig()).server).toBe('http://127.0.0.1:9080');
  });

  it('takes the namespace from -n, then the context, then default', () => {
    expect(resolveConnection({ namespace: 'x' }, {}, config)).toMatchObject({ namespace: 'x', namespaceExplicit: true });
    expect(resolveConnection({}, {}, config)).toMatchObject({ namespace: 'shop', namespaceExplicit: false });
    expect(resolveConnection({}, {}, emptyConfig()).namespace).toBe('default');
  });

  it('fails clearly when the current context does not exist', () => {
    expect(() => resolveConnection({}, {}, parseConfig('current-context: gone\n', 'f'))).toThrow('current-context "gone" does not exist');
  });

  it('normalizes server URLs', () => {
    expect(normalizeServer('127.0.0.1:9080')).toBe('http://127.0.0.1:9080');
    expect(normalizeServer('https://h/')).toBe('https://h');
    expect(() => normalizeServer('ftp://h')).toThrow(/only http and https/);
  });
});
