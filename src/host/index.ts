/**
 * Host maintenance: the drain planner (pure), the drain and resume executors, and the persisted
 * maintenance state with its ledger of which VM went where. Transport-free: the agent (standalone)
 * or the cluster manager supplies the inventory, the compatibility report and the mover.
 */
export * from './placement.js';
export * from './store.js';
export * from './drain.js';
export * from './resume.js';
