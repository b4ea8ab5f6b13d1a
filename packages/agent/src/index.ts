export { startAgent, type RunningAgent } from './agent/agent.js';
export { parseAgentArgs, AGENT_USAGE, type AgentOptions } from './options.js';
export { createLogger, type Logger } from './logger.js';
export { AgentError } from './errors.js';
export { DataPlane, type DataPlaneOptions, type DataPlaneUpdate } from './data-plane/data-plane.js';
