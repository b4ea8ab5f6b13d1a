import { createPrivateKey, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { whenFieldsValid } from './common.js';
import { envelope, inputStatus, namespacedMetadata, statusSchema } from './resource.js';

const DATA_KEY_RE = /^[-._a-zA-Z0-9]+$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PEM_BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

export const SECRET_TYPES = ['tls', 'opaque'] as const;

function dataKeyProblem(key: string): string | undefined {
  return key.length <= 253 && DATA_KEY_RE.test(key)
    ? undefined
    : `invalid key "${key}": must be letters, digits, '-', '_' or '.', at most 253 characters`;
}

const dataSchema = z
  .record(z.string(), z.string())
  .superRefine((data, ctx) => {
    for (const [k, v] of Object.entries(data)) {
      const problem = dataKeyProblem(k) ?? (BASE64_RE.test(v) ? undefined : 'must be base64 (use stringData for plain text)');
      if (problem) ctx.addIssue({ code: 'custom', path: [k], message: problem });
    }
  })
  .describe('Values, base64-encoded, by key. For type tls: tls.crt (PEM certificate chain, leaf first) and tls.key (PEM private key).');

const stringDataSchema = z
  .record(z.string(), z.string())
  .superRefine((data, ctx) => {
    for (const k of Object.keys(data)) {
      const problem = dataKeyProblem(k);
      if (problem) ctx.addIssue({ code: 'custom', path: [k], message: problem });
    }
  })
  .describe('Write-only plain-text values, by key. On validation each is base64-encoded into data (replacing a data key of the same name) and stringData is dropped, as in Kubernetes.');

/** Why `pem` is not a usable certificate chain, or undefined. */
function certificateProblem(pem: string): string | undefined {
  const blocks = [...pem.matchAll(PEM_BLOCK_RE)];
  if (blocks.length === 0) return 'must be a PEM certificate (-----BEGIN CERTIFICATE-----)';
  for (const [i, b] of blocks.entries()) {
    if (b[1] !== 'CERTIFICATE') return `PEM block ${i + 1} is a ${b[1]}, expected a CERTIFICATE`;
    try {
      new X509Certificate(b[0]);
    } catch (err: unknown) {
      return `PEM block ${i + 1} is not a valid certificate: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return undefined;
}

interface TlsMaterial {
  crt: string;
  key: string;
  crtField: (string | number)[];
  keyField: (string | number)[];
}

function checkTlsMaterial(m: TlsMaterial, ctx: z.RefinementCtx): void {
  const crtProblem = certificateProblem(m.crt);
  if (crtProblem) ctx.addIssue({ code: 'custom', path: m.crtField, message: crtProblem });
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(m.key)) {
    ctx.addIssue({ code: 'custom', path: m.keyField, message: 'must be a PEM private key (-----BEGIN PRIVATE KEY-----)' });
    return;
  }
  let key;
  try {
    key = createPrivateKey(m.key);
  } catch (err: unknown) {
    ctx.addIssue({ code: 'custom', path: m.keyField, message: `not a valid private key: ${err instanceof Error ? err.message : String(err)}` });
    return;
  }
  if (crtProblem) return;
  const leaf = [...m.crt.matchAll(PEM_BLOCK_RE)][0]?.[0] ?? '';
  if (!new X509Certificate(leaf).checkPrivateKey(key)) {
    ctx.addIssue({ code: 'custom', path: m.keyField, message: 'does not match the certificate in tls.crt' });
  }
}

const secretFields = {
  ...envelope('Secret'),
  ...namespacedMetadata(),
  type: z
    .enum(SECRET_TYPES)
    .default('opaque')
    .describe('tls: a certificate chain and private key (tls.crt, tls.key, PEM), for Listener and Upstream TLS. opaque: any keys. Default: opaque.'),
  data: dataSchema.optional(),
  stringData: stringDataSchema.optional(),
};

function finishSecret<T extends { type: (typeof SECRET_TYPES)[number]; data?: Record<string, string>; stringData?: Record<string, string> }>(
  s: T,
  ctx: z.RefinementCtx,
): void {
  if (s.type !== 'tls') return;
  const pick = (key: string): { text: string; field: (string | number)[] } | undefined => {
    const plain = s.stringData?.[key];
    if (plain !== undefined) return { text: plain, field: ['stringData', key] };
    const encoded = s.data?.[key];
    if (encoded !== undefined) return { text: Buffer.from(encoded, 'base64').toString('utf8'), field: ['data', key] };
    return undefined;
  };
  const crt = pick('tls.crt');
  const key = pick('tls.key');
  if (!crt) ctx.addIssue({ code: 'custom', path: ['data', 'tls.crt'], message: 'Required value: type tls needs tls.crt in data or stringData' });
  if (!key) ctx.addIssue({ code: 'custom', path: ['data', 'tls.key'], message: 'Required value: type tls needs tls.key in data or stringData' });
  if (crt && key) checkTlsMaterial({ crt: crt.text, key: key.text, crtField: crt.field, keyField: key.field }, ctx);
}

/** stringData is folded into data, base64-encoded, and dropped, as Kubernetes does. */
function foldStringData<T extends { data?: Record<string, string>; stringData?: Record<string, string> }>({ stringData, ...rest }: T) {
  const data: Record<string, string> = { ...rest.data };
  for (const [k, v] of Object.entries(stringData ?? {})) data[k] = Buffer.from(v, 'utf8').toString('base64');
  return { ...rest, data };
}

export const secretStatusSchema = statusSchema('Observed state of the Secret.', {});

const SECRET_DESCRIPTION =
  'A Secret holds sensitive data such as a TLS certificate and key. It has no spec: type, data and stringData are top-level, as in Kubernetes. Agents receive only the Secrets their listeners and upstreams use.';

export const SecretSchema = z
  .strictObject({ ...secretFields, status: secretStatusSchema })
  .superRefine(finishSecret, { when: whenFieldsValid('type', 'data', 'stringData') })
  .transform(foldStringData)
  .describe(SECRET_DESCRIPTION);

export const SecretInputSchema = z
  .strictObject({ ...secretFields, status: inputStatus() })
  .superRefine(finishSecret, { when: whenFieldsValid('type', 'data', 'stringData') })
  .transform(foldStringData);

export type Secret = z.output<typeof SecretSchema>;
