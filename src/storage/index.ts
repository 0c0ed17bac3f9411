export * from './pools.js';
export * from './images.js';
export * from './mirror.js';
