// One error class for the agent (STYLE §7). Codes map to an exit code or an admin HTTP status
// only at the edges.
export type AgentErrorCode = 'bad-request' | 'unavailable' | 'internal';

export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
