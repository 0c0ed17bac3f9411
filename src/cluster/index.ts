export * from './model.js';
export * from './placement.js';
export * from './fencing.js';
export * from './moving.js';
export * from './store.js';
export * from './manager.js';
export * from './node.js';
export * from './leave.js';
export type { HaChange } from './owner.js';
