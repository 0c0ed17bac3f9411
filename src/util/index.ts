export * from './paths.js';
export * from './units.js';
export * from './context.js';
export * from './db.js';
export * from './net.js';
export * from './files.js';
