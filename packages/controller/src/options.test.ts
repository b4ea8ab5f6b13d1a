import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, tempDir, type TempDir, type TestPki } from '@sluice/testing';
import { parseControllerArgs, type ControllerOptions } from './options.js';

describe('parseControllerArgs', () => {
  it('defaults to 2 probers per endpoint and a 1 s report interval', () => {
    expect(parseControllerArgs([])).toMatchObject({ healthProbers: 2, reportIntervalMs: 1000 });
    expect(parseControllerArgs(['--health-probers', '3', '--report-interval', '200ms'])).toMatchObject({ healthProbers: 3, reportIntervalMs: 200 });
  });

  it('names the flag of a bad value', () => {
    expect(() => parseControllerArgs(['--health-probers', '0', '--report-interval', '1h'])).toThrow(
      /--health-probers: must be an integer from 1 to 100, not "0"\n--report-interval: must be a duration from 50ms to 1m, not "1h"/,
    );
  });

  it('takes the leader lease TTL in whole seconds, 10 s by default', () => {
    expect(parseControllerArgs([])).toMatchObject({ leaderLeaseTtlMs: 10_000 });
    expect(parseControllerArgs(['--leader-lease-ttl', '2s'])).toMatchObject({ leaderLeaseTtlMs: 2_000 });
    expect(() => parseControllerArgs(['--leader-lease-ttl', '1500ms'])).toThrow(/--leader-lease-ttl: must be whole seconds from 2s to 5m, not "1500ms"/);
  });

  it('takes --advertise-addr as a reachable HOST:PORT (absent by default: derived from the bound address)', () => {
    expect(parseControllerArgs([]).valueOf()).not.toHaveProperty('advertiseAddr');
    expect(parseControllerArgs(['--advertise-addr', 'ctl-0.sluice:9081'])).toMatchObject({ advertiseAddr: 'ctl-0.sluice:9081' });
    expect(() => parseControllerArgs(['--advertise-addr', '0.0.0.0:9081'])).toThrow(/--advertise-addr: must name a reachable host and a port/);
    expect(() => parseControllerArgs(['--advertise-addr', 'nohost'])).toThrow(/--advertise-addr: must be HOST:PORT/);
  });
});

describe('parseControllerArgs --grpc-tls-* and --admin-tls-*', () => {
  let dir: TempDir;
  let pki: TestPki;
  beforeAll(async () => {
    dir = await tempDir();
    pki = await createTestPki(dir.path);
    await writeFile(join(dir.path, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n');
  });
  afterAll(() => dir?.[Symbol.asyncDispose]());
  const problems = (...argv: string[]) => {
    try {
      parseControllerArgs(argv);
    } catch (error) {
      return (error as Error).message.split('\n');
    }
    throw new Error('expected a parse error');
  };

  it('is off without flags; reads the PEM files once given', async () => {
    expect(parseControllerArgs([])).not.toHaveProperty('grpcTls');
    const server = parseControllerArgs(['--grpc-tls-cert', pki.server.cert, '--grpc-tls-key', pki.server.key]);
    expect(server).toMatchObject({ grpcTls: { cert: await readFile(pki.server.cert), key: await readFile(pki.server.key) } });
    expect((server as ControllerOptions).grpcTls).not.toHaveProperty('ca');
    const mutual = parseControllerArgs(['--grpc-tls-cert', pki.server.cert, '--grpc-tls-key', pki.server.key, '--grpc-tls-ca', pki.ca.cert]);
    expect(mutual).toMatchObject({ grpcTls: { ca: await readFile(pki.ca.cert) } });
    expect(mutual).not.toHaveProperty('adminTls');
    expect(parseControllerArgs(['--admin-tls-cert', pki.server.cert, '--admin-tls-key', pki.server.key])).toMatchObject({
      adminTls: { cert: await readFile(pki.server.cert), key: await readFile(pki.server.key) },
    });
  });

  it('wants the certificate and key together, and a CA only with them', () => {
    expect(problems('--grpc-tls-cert', pki.server.cert)).toEqual(['--grpc-tls-key: required with --grpc-tls-cert']);
    expect(problems('--grpc-tls-key', pki.server.key)).toEqual(['--grpc-tls-cert: required with --grpc-tls-key']);
    expect(problems('--grpc-tls-ca', pki.ca.cert)).toEqual(['--grpc-tls-ca: needs --grpc-tls-cert and --grpc-tls-key (client certificates are checked over TLS)']);
  });

  it('names the flag of a file that is missing, not PEM, or not the pair', () => {
    const missing = join(dir.path, 'missing.pem');
    expect(problems('--grpc-tls-cert', missing, '--grpc-tls-key', pki.server.key, '--grpc-tls-ca', pki.server.key)).toEqual([
      expect.stringMatching(new RegExp(`^--grpc-tls-cert: cannot read ${missing}: ENOENT`)),
      `--grpc-tls-ca: ${pki.server.key} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`,
    ]);
    expect(problems('--grpc-tls-cert', pki.server.cert, '--grpc-tls-key', pki.server.cert)).toEqual([
      expect.stringMatching(new RegExp(`^--grpc-tls-key: ${pki.server.cert} is not an unencrypted PEM private key`)),
    ]);
    expect(problems('--grpc-tls-cert', pki.server.cert, '--grpc-tls-key', pki.client.key)).toEqual([
      `--grpc-tls-key: ${pki.client.key} is not the private key of the first certificate in --grpc-tls-cert ${pki.server.cert}`,
    ]);
    expect(problems('--grpc-tls-cert', pki.client.cert, '--grpc-tls-key', pki.client.key)).toEqual([
      `--grpc-tls-cert: ${pki.client.cert} may not be used for TLS server authentication: its extended key usage lacks serverAuth`,
    ]);
    expect(problems('--admin-tls-key', pki.server.key)).toEqual(['--admin-tls-cert: required with --admin-tls-key']);
    expect(problems('--grpc-tls-cert', join(dir.path, 'broken.pem'), '--grpc-tls-key', pki.server.key)).toEqual([
      expect.stringMatching(/^--grpc-tls-cert: certificate 1 in .*broken\.pem does not parse/),
    ]);
  });
});
