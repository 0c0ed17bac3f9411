export * from './pki.js';
export * from './tls.js';
