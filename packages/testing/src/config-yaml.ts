/**
 * The configuration most cross-process tests need, as YAML for `sluicectl apply -f -`: a
 * Listener `web` on `port`, an Upstream `name` over `endpoints`, and a Route sending every
 * request on `web` to it. `upstream` and `rule` are extra YAML lines for the Upstream spec
 * and the route rule (already indented by the caller: 2 and 6 spaces).
 */
export function webToUpstream(options: {
  port: number;
  endpoints: { port: number; weight?: number }[];
  name?: string;
  upstream?: string;
  rule?: string;
}): string {
  const name = options.name ?? 'shop';
  const endpoints = options.endpoints
    .map((e) => `    - {address: 127.0.0.1, port: ${e.port}${e.weight === undefined ? '' : `, weight: ${e.weight}`}}`)
    .join('\n');
  return `apiVersion: sluice/v1
kind: Listener
metadata: {name: web}
spec: {port: ${options.port}, protocol: HTTP}
---
apiVersion: sluice/v1
kind: Upstream
metadata: {name: ${name}}
spec:
  endpoints:
${endpoints}
${options.upstream ?? ''}
---
apiVersion: sluice/v1
kind: Route
metadata: {name: ${name}}
spec:
  parentRefs: [{name: web}]
  rules:
    - backendRefs: [{name: ${name}}]
${options.rule ?? ''}
`;
}
