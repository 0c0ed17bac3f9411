export { buildApi } from './server.js';
export { localSocketHandler } from './auth.js';
