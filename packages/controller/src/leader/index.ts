export { AlwaysLeader, EtcdLeaderElector, createLeaderElector, type EtcdElectorOptions, type LeaderElector } from './elector.js';
export { LeaderOnly } from './leader-only.js';
