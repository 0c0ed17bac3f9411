/**
 * The transport-free core of live migration: the job state machine and its recovery rules,
 * the SQLite job store, the convergence and cut-over policies (pure), the QEMU settings of
 * a move, and the peer-RPC message types. The executor drives these; it lives beside them.
 */
export * from './job.js';
export * from './recovery.js';
export * from './store.js';
export * from './policy.js';
export * from './settings.js';
export * from './protocol.js';
export type { MigrationHost } from './host.js';
export { PeerClient } from './peer-client.js';
export { DestinationSide } from './destination.js';
export { MigrationService, streamCompleted, type MoveRequest } from './service.js';
export { faultPoint } from './faults.js';
export * from './storage.js';
export * from './host-settings.js';
export * from './compare.js';
export { compareMove, assertCompatible, answerCompare, type CompareQuery, type CompareReport } from './compatibility.js';
export * from './networks.js';
