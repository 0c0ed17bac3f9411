export * from './pools.js';
export * from './images.js';
