export { tempDir, type TempDir } from './temp-dir.js';
export { freePort } from './free-port.js';
export { ManagedProcess } from './child-process.js';
export { ControllerProcess, type ControllerOptions } from './controller-process.js';
export { repoRoot, sluiceBin, sluicectlBin } from './repo.js';
export { startEtcd, type EtcdFixture } from './etcd.js';
export { runSluicectl, type CliResult } from './cli.js';
export { startBackend, type Backend } from './backend.js';
export { AgentProcess, type AgentOptions } from './agent-process.js';
