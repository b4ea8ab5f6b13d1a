import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, tempDir, type TempDir, type TestPki } from '@sluice/testing';
import { parseAgentArgs, sanitizeId, type AgentOptions } from './options.js';

const defaults = { hostname: 'Edge_Host.example.com', cores: 4 };
const parse = (...argv: string[]) => parseAgentArgs(argv, defaults);
const problems = (...argv: string[]) => {
  try {
    parse(...argv);
  } catch (error) {
    return (error as Error).message.split('\n');
  }
  throw new Error('expected a parse error');
};

describe('parseAgentArgs', () => {
  it('applies defaults: admin on 127.0.0.1:9180, one worker per core, id from the host name', () => {
    expect(parse('--controller', '10.0.0.5:9081')).toEqual({
      controllers: ['10.0.0.5:9081'],
      id: 'edge-host.example.com',
      labels: {},
      admin: { host: '127.0.0.1', port: 9180 },
      cacheDir: undefined,
      workers: 4,
      listenAddress: undefined,
      logLevel: 'info',
    });
  });

  it('reads every flag', () => {
    expect(
      parse(
        '--controller', 'c1:9081, [::1]:9082',
        '--id', 'edge-1',
        '--labels', 'zone=eu-1,tier=edge,example.com/role=',
        '--admin-addr', ':0',
        '--cache-dir', '/var/lib/agent',
        '--workers', '2',
        '--listen-address', '127.0.0.2',
        '--log-level', 'debug',
      ),
    ).toEqual({
      controllers: ['c1:9081', '[::1]:9082'],
      id: 'edge-1',
      labels: { zone: 'eu-1', tier: 'edge', 'example.com/role': '' },
      admin: { host: '0.0.0.0', port: 0 },
      cacheDir: '/var/lib/agent',
      workers: 2,
      listenAddress: '127.0.0.2',
      logLevel: 'debug',
    });
  });

  it('reports every bad flag at once, naming it', () => {
    expect(
      problems(
        '--controller', 'nope,:9081,c:0',
        '--id', 'Edge_1',
        '--labels', 'zone,-bad=x,ok=v!',
        '--admin-addr', 'localhost',
        '--cache-dir', ' ',
        '--workers', '0',
        '--listen-address', 'eth0',
        '--log-level', 'loud',
      ),
    ).toEqual([
      '--controller: must be HOST:PORT with a port from 0 to 65535, not "nope"',
      '--controller: ":9081" needs a host',
      '--controller: "c:0" needs a port from 1 to 65535',
      '--id: must be a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", at most 253 characters), not "Edge_1"',
      '--labels: "zone" must be KEY=VALUE',
      expect.stringMatching(/^--labels: key "-bad" must be/),
      expect.stringMatching(/^--labels: value "v!" of "ok" must be/),
      '--admin-addr: must be HOST:PORT with a port from 0 to 65535, not "localhost"',
      '--cache-dir: must be a directory path, not empty',
      '--workers: must be a whole number from 1 to 256, not "0"',
      '--listen-address: must be an IPv4 or IPv6 address, not "eth0"',
      '--log-level: must be one of error, warn, info, debug',
    ]);
  });

  it('requires --controller', () => {
    expect(problems()).toEqual(['--controller: required, e.g. --controller 127.0.0.1:9081']);
  });

  it('rejects unknown flags and positionals', () => {
    expect(problems('--controller', 'c:1', '--bogus')[0]).toMatch(/--bogus/);
    expect(problems('--controller', 'c:1', 'extra')[0]).toMatch(/extra/);
  });

  it('rejects a label key given twice and non-numeric workers', () => {
    expect(problems('--controller', 'c:1', '--labels', 'a=1,a=2', '--workers', '2x')).toEqual([
      '--labels: "a" is given twice',
      '--workers: must be a whole number from 1 to 256, not "2x"',
    ]);
  });

  it('answers help', () => {
    expect(parse('--help')).toBe('help');
  });
});

describe('sanitizeId', () => {
  it.each([
    ['Edge_Host.Example.COM', 'edge-host.example.com'],
    ['-web-01-', 'web-01'],
    ['a..b', 'a.b'],
    ['___', 'agent'],
    ['x'.repeat(70), 'x'.repeat(63)],
  ])('%s -> %s', (name, id) => {
    expect(sanitizeId(name)).toBe(id);
  });
});

describe('parseAgentArgs --tls-*', () => {
  let dir: TempDir;
  let pki: TestPki;
  beforeAll(async () => {
    dir = await tempDir();
    pki = await createTestPki(dir.path);
  });
  afterAll(() => dir?.[Symbol.asyncDispose]());
  const c = ['--controller', '127.0.0.1:9081'];

  it('is off without flags; a CA alone verifies the controller; all three add the client certificate', async () => {
    expect(parse(...c)).not.toHaveProperty('tls');
    expect(parse(...c, '--tls-ca', pki.ca.cert)).toMatchObject({ tls: { ca: await readFile(pki.ca.cert) } });
    const mutual = parse(...c, '--tls-ca', pki.ca.cert, '--tls-cert', pki.client.cert, '--tls-key', pki.client.key) as AgentOptions;
    expect(mutual.tls).toEqual({ ca: await readFile(pki.ca.cert), cert: await readFile(pki.client.cert), key: await readFile(pki.client.key) });
  });

  it('takes --tls-server-name as a DNS name or IP address (alone: TLS with the system roots)', () => {
    expect(parse(...c, '--tls-server-name', 'sluice-controller.sluice.svc')).toMatchObject({ tls: { serverName: 'sluice-controller.sluice.svc' } });
    expect(parse(...c, '--tls-server-name', '10.0.0.5')).toMatchObject({ tls: { serverName: '10.0.0.5' } });
    expect(problems(...c, '--tls-server-name', 'bad name')).toEqual(['--tls-server-name: must be a DNS name or an IP address, not "bad name"']);
  });

  it('names the flag of a missing, non-PEM or mismatched file, and wants cert and key together', () => {
    const missing = join(dir.path, 'missing.pem');
    expect(problems(...c, '--tls-ca', missing, '--tls-key', pki.client.key)).toEqual([
      expect.stringMatching(new RegExp(`^--tls-ca: cannot read ${missing}: ENOENT`)),
      '--tls-cert: required with --tls-key',
    ]);
    expect(problems(...c, '--tls-ca', pki.ca.key, '--tls-cert', pki.client.cert, '--tls-key', pki.server.key)).toEqual([
      `--tls-ca: ${pki.ca.key} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`,
      `--tls-key: ${pki.server.key} is not the private key of the first certificate in --tls-cert ${pki.client.cert}`,
    ]);
    expect(problems(...c, '--tls-cert', pki.server.cert, '--tls-key', pki.server.key)).toEqual([
      `--tls-cert: ${pki.server.cert} may not be used for TLS client authentication: its extended key usage lacks clientAuth`,
    ]);
    expect(problems(...c, '--tls-cert', pki.client.cert, '--tls-key', pki.client.cert)).toEqual([
      expect.stringMatching(new RegExp(`^--tls-key: ${pki.client.cert} is not an unencrypted PEM private key`)),
    ]);
  });
});
