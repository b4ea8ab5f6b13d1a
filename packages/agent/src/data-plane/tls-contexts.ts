import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Secret } from '@sluice/proto';

// TLS termination material: one SecureContext per certificate Secret version (built once,
// shared by every listener that names it), and per listener a table that picks a context by
// the client's SNI server name. A new table is swapped in on every config version; the
// SNICallback of a bound socket reads the current one, so a rotated certificate serves new
// handshakes while open connections keep theirs.

/** TLS protocol versions a listener may set ("" = the default). */
export const TLS_VERSIONS: readonly string[] = ['TLSv1.2', 'TLSv1.3'];
/** ALPN protocols a listener may offer. */
export const ALPN_PROTOCOLS: readonly string[] = ['h2', 'http/1.1'];
const DEFAULT_ALPN: readonly string[] = ALPN_PROTOCOLS;

/** One certificate as the SNI table needs it. */
export interface Certificate {
  readonly secret: string;
  /** The Secret resource version it was built from. */
  readonly version: string;
  readonly context: SecureContext;
  /** Lower-case DNS names it is valid for: SAN DNS entries, else the subject CN. "*.x" = wildcard. */
  readonly names: readonly string[];
  /** PEM, for the server's default context (clients that send no SNI). */
  readonly certificateChain: string;
  readonly privateKey: string;
}

/** A listener's compiled TLS settings: what its socket serves with from this version on. */
export interface ListenerTlsView {
  readonly sni: SniTable;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly maxVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Offered in this order of preference. */
  readonly alpn: readonly string[];
  /** Same key = same server default context (no need to rebuild it). */
  readonly key: string;
}

/** Server name -> certificate: exact name first, then a wildcard of the parent, then the first certificate. */
export class SniTable {
  private readonly exact = new Map<string, Certificate>();
  private readonly wildcard = new Map<string, Certificate>();

  constructor(readonly certificates: readonly Certificate[]) {
    if (certificates.length === 0) throw new Error('an SNI table needs at least one certificate');
    // Earlier certificates win a name both hold: the Listener's order is the operator's.
    for (const cert of certificates) {
      for (const name of cert.names) {
        if (name.startsWith('*.')) {
          const parent = name.slice(2);
          if (!this.wildcard.has(parent)) this.wildcard.set(parent, cert);
        } else if (!this.exact.has(name)) this.exact.set(name, cert);
      }
    }
  }

  get default(): Certificate {
    return this.certificates[0] as Certificate;
  }

  /** The certificate for a client's server name (any case, trailing dot allowed). */
  select(serverName: string): Certificate {
    let name = serverName.toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    const exact = this.exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    // A wildcard covers exactly one label ("*.example.com" matches a.example.com, not a.b.example.com).
    if (dot > 0) {
      const wild = this.wildcard.get(name.slice(dot + 1));
      if (wild !== undefined) return wild;
    }
    return this.default;
  }
}

/** The DNS names a certificate is valid for (SAN DNS entries; the CN only when it has none, as browsers do). */
export function certificateNames(pem: string): string[] {
  const cert = new X509Certificate(pem);
  const san = cert.subjectAltName;
  const names: string[] = [];
  if (san !== undefined) {
    for (const entry of san.split(/,\s*/)) {
      if (entry.startsWith('DNS:')) names.push(entry.slice(4).toLowerCase());
    }
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
    if (cn !== undefined && cn !== '') names.push(cn.toLowerCase());
  }
  return names;
}

interface CachedCertificate {
  readonly version: string;
  readonly certificate: Certificate;
}

/**
 * Certificates by Secret name, built once per Secret version. `compile` gives a listener's
 * view for one config version; `retain` forgets the Secrets no listener uses any more.
 */
export class CertificateStore {
  private cache = new Map<string, CachedCertificate>();

  /** The certificate for a Secret resource version (throws if its PEM does not load). */
  certificate(name: string, version: string, secret: Secret): Certificate {
    const cached = this.cache.get(name);
    if (cached !== undefined && cached.version === version) return cached.certificate;
    // A CA bundle (an Upstream's trust anchor) has no key: it cannot serve a handshake.
    if (secret.privateKey === '') throw new Error('it has no private key (a CA bundle cannot serve TLS)');
    const context = createSecureContext({ cert: secret.certificateChain, key: secret.privateKey });
    const certificate: Certificate = {
      secret: name,
      version,
      context,
      names: certificateNames(secret.certificateChain),
      certificateChain: secret.certificateChain,
      privateKey: secret.privateKey,
    };
    this.cache.set(name, { version, certificate });
    return certificate;
  }

  /** The last certificate built for a Secret (one removed from the set since), if any. */
  last(name: string): Certificate | undefined {
    return this.cache.get(name)?.certificate;
  }

  /** Drops every cached certificate whose Secret is not in `names`. */
  retain(names: ReadonlySet<string>): void {
    for (const name of this.cache.keys()) if (!names.has(name)) this.cache.delete(name);
  }
}

/** A listener's TLS view from its settings and its (already resolved) certificates, in order. */
export function listenerTlsView(
  certificates: readonly Certificate[],
  settings: { minVersion: string; maxVersion: string; alpnProtocols: readonly string[] },
): ListenerTlsView {
  const minVersion = (settings.minVersion || 'TLSv1.2') as ListenerTlsView['minVersion'];
  const maxVersion = (settings.maxVersion || 'TLSv1.3') as ListenerTlsView['maxVersion'];
  const alpn = settings.alpnProtocols.length === 0 ? DEFAULT_ALPN : [...settings.alpnProtocols];
  // Identity of the server's default context: the first certificate's Secret version and the TLS versions.
  const key = `${certificates[0]?.secret ?? ''}#${certificates[0]?.version ?? ''}@${minVersion}-${maxVersion}`;
  return { sni: new SniTable(certificates), minVersion, maxVersion, alpn, key };
}

/** Problems with a listener's TLS settings (field paths under `tls.`), or undefined. */
export function tlsSettingsProblem(settings: { certificateSecrets: readonly string[]; minVersion: string; maxVersion: string; alpnProtocols: readonly string[] }): string | undefined {
  if (settings.certificateSecrets.length === 0) return 'tls.certificate_secrets: an HTTPS listener needs at least one certificate Secret';
  for (const [field, value] of [['min_version', settings.minVersion], ['max_version', settings.maxVersion]] as const) {
    if (value !== '' && !TLS_VERSIONS.includes(value)) return `tls.${field}: must be ${TLS_VERSIONS.join(' or ')}, got "${value}"`;
  }
  const min = TLS_VERSIONS.indexOf(settings.minVersion || 'TLSv1.2');
  const max = TLS_VERSIONS.indexOf(settings.maxVersion || 'TLSv1.3');
  if (min > max) return `tls.max_version: ${settings.maxVersion} is below min_version ${settings.minVersion}`;
  const seen = new Set<string>();
  for (const [i, p] of settings.alpnProtocols.entries()) {
    if (!ALPN_PROTOCOLS.includes(p)) return `tls.alpn_protocols[${i}]: must be ${ALPN_PROTOCOLS.join(' or ')}, got "${p}"`;
    if (seen.has(p)) return `tls.alpn_protocols[${i}]: "${p}" is listed twice`;
    seen.add(p);
  }
  return undefined;
}
