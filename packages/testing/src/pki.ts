import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A PEM certificate file and its key file. */
export interface CertFiles {
  cert: string;
  key: string;
}

/** A throwaway CA with a server certificate (127.0.0.1, ::1, localhost) and a client one. */
export interface TestPki {
  ca: CertFiles;
  server: CertFiles;
  client: CertFiles;
}

/**
 * Writes a fresh PKI under `dir/name` with the `openssl` command (P-256 keys, valid one day),
 * for tests of TLS between real processes. Two calls with different names give two CAs that
 * do not trust each other's certificates.
 */
export async function createTestPki(dir: string, name = 'pki'): Promise<TestPki> {
  const base = join(dir, name);
  await mkdir(base, { recursive: true });
  const file = (f: string) => join(base, f);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('req', '-x509', ...newKey, '-keyout', file('ca-key.pem'), '-out', file('ca.pem'), '-days', '1', '-subj', `/CN=${name} test CA`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const issue = async (leaf: string, extensions: string): Promise<CertFiles> => {
    await writeFile(file(`${leaf}.ext`), extensions);
    await openssl('req', ...newKey, '-keyout', file(`${leaf}-key.pem`), '-out', file(`${leaf}.csr`), '-subj', `/CN=${name} ${leaf}`);
    await openssl('x509', '-req', '-in', file(`${leaf}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca-key.pem'), '-CAcreateserial',
      '-out', file(`${leaf}.pem`), '-days', '1', '-extfile', file(`${leaf}.ext`));
    return { cert: file(`${leaf}.pem`), key: file(`${leaf}-key.pem`) };
  };
  const server = await issue('server', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  const client = await issue('client', 'extendedKeyUsage=clientAuth\n');
  return { ca: { cert: file('ca.pem'), key: file('ca-key.pem') }, server, client };
}

async function openssl(...args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed (tests with TLS need the openssl command): ${error instanceof Error ? error.message : String(error)} ${stderr}`);
  }
}
