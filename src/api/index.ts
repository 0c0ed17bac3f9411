export { buildApi } from './server.js';
