import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** PEM files for the agent's gRPC channels, read and checked once when the flags are parsed. */
export interface AgentTls {
  /** Verifies the controller's certificate; absent: the system's trusted roots. */
  ca?: Buffer;
  /** Client certificate chain and its key, presented to a controller that asks (mTLS). */
  cert?: Buffer;
  key?: Buffer;
  /** The name the controller certificate must carry, whatever address is dialled. */
  serverName?: string;
}

/** Extended key usage OIDs: a certificate that lists EKUs must list the role it plays. */
const EKU = { server: ['1.3.6.1.5.5.7.3.1', 'serverAuth'], client: ['1.3.6.1.5.5.7.3.2', 'clientAuth'] } as const;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads `file` for `flag` as one or more PEM certificates (a chain or a CA bundle), pushing a
 * problem naming the flag when it cannot. Returns the first certificate (the leaf of a chain).
 */
export function readCertificates(flag: string, file: string, problems: string[]): { pem: Buffer; leaf: X509Certificate } | undefined {
  const pem = readPem(flag, file, problems);
  if (pem === undefined) return undefined;
  const blocks = pem.toString('utf8').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    problems.push(`${flag}: ${file} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
    return undefined;
  }
  const parsed: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      parsed.push(new X509Certificate(block));
    } catch (error) {
      problems.push(`${flag}: certificate ${index + 1} in ${file} does not parse: ${message(error)}`);
      return undefined;
    }
  }
  return { pem, leaf: parsed[0]! };
}

/** Reads `file` for `flag` as an unencrypted PEM private key. */
export function readPrivateKey(flag: string, file: string, problems: string[]): { pem: Buffer; key: KeyObject } | undefined {
  const pem = readPem(flag, file, problems);
  if (pem === undefined) return undefined;
  try {
    return { pem, key: createPrivateKey(pem) };
  } catch (error) {
    problems.push(`${flag}: ${file} is not an unencrypted PEM private key: ${message(error)}`);
    return undefined;
  }
}

/**
 * A certificate and key given as a pair: both or neither, the key must belong to the
 * certificate, and the certificate must allow its `role` (mismatches would otherwise only show
 * as failed handshakes, and on the peer's side).
 */
export function readKeyPair(
  role: 'server' | 'client',
  certFlag: string,
  certFile: string | undefined,
  keyFlag: string,
  keyFile: string | undefined,
  problems: string[],
): { cert: Buffer; key: Buffer } | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    problems.push(certFile === undefined ? `${certFlag}: required with ${keyFlag}` : `${keyFlag}: required with ${certFlag}`);
    return undefined;
  }
  const cert = readCertificates(certFlag, certFile, problems);
  const key = readPrivateKey(keyFlag, keyFile, problems);
  if (cert === undefined || key === undefined) return undefined;
  if (!cert.leaf.checkPrivateKey(key.key)) {
    problems.push(`${keyFlag}: ${keyFile} is not the private key of the first certificate in ${certFlag} ${certFile}`);
    return undefined;
  }
  const [oid, name] = EKU[role];
  const usages = cert.leaf.keyUsage;
  if (usages !== undefined && !usages.includes(oid)) {
    problems.push(`${certFlag}: ${certFile} may not be used for TLS ${role} authentication: its extended key usage lacks ${name}`);
    return undefined;
  }
  return { cert: cert.pem, key: key.pem };
}

function readPem(flag: string, file: string, problems: string[]): Buffer | undefined {
  if (file.trim() === '') {
    problems.push(`${flag}: must be a file path, not empty`);
    return undefined;
  }
  try {
    return readFileSync(file);
  } catch (error) {
    problems.push(`${flag}: cannot read ${file}: ${message(error)}`);
    return undefined;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
