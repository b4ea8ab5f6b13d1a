import { isIP } from 'node:net';
import { checkServerIdentity, connect, type ConnectionOptions } from 'node:tls';
import { parseHostPort } from '../host-port.js';
import type { AgentTls } from '../tls-files.js';

/**
 * Why TLS to a controller fails, found with a handshake of our own, or undefined when the
 * controller accepts us. Needed because a Node TLS server (grpc-js) that does not trust a
 * client certificate drops the connection after the handshake without an alert, and grpc-js
 * then says only "Failed to connect". A controller that accepts us sends its HTTP/2 SETTINGS
 * at once; a drop before any byte means it refused our certificate.
 */
export function probeTls(address: string, tls: AgentTls, timeoutMs = 5_000): Promise<string | undefined> {
  const problems: string[] = [];
  const { host, port } = parseHostPort('address', address, problems);
  if (problems.length > 0) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    let secure = false;
    // Same checks as grpc-js: --tls-ca (or the system's roots), --tls-server-name (or the
    // dialled host) against the certificate's names. An IP is no SNI name (RFC 6066).
    const name = tls.serverName ?? host;
    const options: ConnectionOptions = {
      host,
      port,
      ALPNProtocols: ['h2'],
      checkServerIdentity: (_, cert) => checkServerIdentity(name, cert),
      ...(isIP(name) === 0 ? { servername: name } : {}),
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    };
    const socket = connect(options, () => {
      secure = true;
    });
    const done = (reason: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    // A diagnosis never holds up the agent's exit.
    timer.unref();
    socket.unref();
    socket.once('data', () => done(undefined));
    socket.once('error', (error: Error) => done(`${explain(error, tls)}: ${error.message.trim()}`));
    // Closed after the handshake without an alert: how Node refuses a client certificate.
    socket.once('close', () => done(secure ? refusal(tls) : undefined));
  });
}

function refusal(tls: AgentTls): string {
  return tls.cert === undefined
    ? 'the controller requires a client certificate: give --tls-cert and --tls-key'
    : "the controller does not trust this agent's client certificate: --tls-cert must be signed by the controller's --grpc-tls-ca";
}

/** The TLS error in operator terms: which flag to look at. */
function explain(error: Error, tls: AgentTls): string {
  const code = (error as { code?: string }).code ?? '';
  if (code.includes('ALERT_CERTIFICATE_REQUIRED')) return refusal({ ...tls, cert: undefined });
  if (code.includes('_ALERT_')) return refusal(tls);
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return tls.serverName === undefined
      ? "TLS handshake failed: the controller certificate's names (SANs) do not include the dialled host: list it, or give --tls-server-name"
      : "TLS handshake failed: the controller certificate's names (SANs) do not include --tls-server-name";
  }
  if (/CERT|SELF_SIGNED|ISSUER|UNABLE_TO_VERIFY/.test(code)) return 'TLS handshake failed: the controller certificate is not trusted: does --tls-ca hold the CA that signed it?';
  if (/WRONG_VERSION_NUMBER|PACKET_LENGTH/.test(code)) return 'TLS handshake failed: is the controller running without --grpc-tls-cert?';
  return 'TLS handshake failed';
}
