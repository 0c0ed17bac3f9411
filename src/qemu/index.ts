export * from './argv.js';
export * from './process.js';
export * from './tap.js';
export { sweepLinks } from './links.js';
export * from './accel.js';
export * from './bridge.js';
export * from './cpu-models.js';
export { runTool, tryTool } from './run.js';
export * from './quickack.js';
