/**
 * `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces). A twin of the controller's
 * `parseHostPort` (packages/controller/src/options.ts), kept on purpose: the agent may import
 * only @sluice/proto, and generated wire code is no home for flag parsing. Same grammar, same
 * message, so both binaries report a bad address alike.
 */
export function parseHostPort(flag: string, text: string, problems: string[]): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    problems.push(`${flag}: must be HOST:PORT with a port from 0 to 65535, not "${text}"`);
    return { host: '', port: 0 };
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

/** `host:port` as gRPC and URLs want it: IPv6 literals in brackets. */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
