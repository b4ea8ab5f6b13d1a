import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A PEM certificate and its private key, in memory. */
export interface PemPair {
  cert: string;
  key: string;
}

/**
 * A self-signed P-256 certificate for `commonName` (valid one day) with the given DNS names
 * as subjectAltName (none: CN only), made with the `openssl` command. For TLS termination
 * tests: the caller trusts the certificate itself.
 */
export async function selfSignedCertificate(commonName: string, dnsNames: readonly string[] = [commonName]): Promise<PemPair> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-cert-'));
  try {
    const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${commonName}`,
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')];
    if (dnsNames.length > 0) args.push('-addext', `subjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(',')}`);
    await run('openssl', args);
    return { cert: await readFile(join(dir, 'cert.pem'), 'utf8'), key: await readFile(join(dir, 'key.pem'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
