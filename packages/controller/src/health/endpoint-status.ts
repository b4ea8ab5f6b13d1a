// The Upstream.status.endpoints writer now also writes dynamic weights and traffic figures:
// one writer (STYLE §5), in feedback/weight-runner.ts. These names stay for existing callers.
export { desiredStatus, EndpointStatusWriter as EndpointHealthStatus } from '../feedback/weight-runner.js';
export type { EndpointStatus } from '../feedback/weight-runner.js';
