export * from './spec.js';
export * from './state.js';
export * from './inventory.js';
