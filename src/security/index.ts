export * from './pki.js';
export * from './tls.js';
export * from './dh-params.js';
