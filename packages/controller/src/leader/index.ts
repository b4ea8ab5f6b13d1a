export { AlwaysLeader, EtcdLeaderElector, createLeaderElector, decodeLeader, encodeLeader, type EtcdElectorOptions, type LeaderElector, type LeaderInfo } from './elector.js';
export { LeaderOnly } from './leader-only.js';
