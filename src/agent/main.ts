#!/usr/bin/env node
/** ferryd: the host agent. Usage: ferryd --config FILE */
import { createServer } from 'node:http';
import { chmodSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { buildApi, localSocketHandler } from '../api/index.js';
import { Agent } from './agent.js';
import { loadConfig } from './config.js';
import { loadTls, serverTlsOptions } from '../security/index.js';

const { values } = parseArgs({ options: { config: { type: 'string', default: '/etc/ferry/ferryd.json' } } });
const config = loadConfig(values.config ?? '/etc/ferry/ferryd.json');
const log = pino({ base: { host: config.hostName } });
// A rejection nobody handled is a bug in ferryd: say so in its log, in its words, and end, so that
// its supervisor (packaging/ferryd.service, Restart=on-failure) starts it again and it recovers its
// jobs from their persisted phases. VMs keep running meanwhile.
process.on('unhandledRejection', (err) => {
  log.fatal({ err }, 'ferryd ends on a rejection nobody handled (a bug; please report it with this log)');
  process.exit(70);
});
mkdirSync(config.stateDir, { recursive: true });

const agent = await Agent.create(config, log);
await agent.sweepLinks();
// With a certificate the TCP listener is HTTPS; peer routes then need a peer's certificate (src/api/peer-auth.ts).
const app = await buildApi(agent, config.tls ? { https: serverTlsOptions(loadTls(config.tls)) } : {});
if (!config.tls) log.warn('the agent config has no tls: the API is plain HTTP, peer RPC is unauthenticated and moves cannot be encrypted');
await app.listen({ host: config.listen.host, port: config.listen.port });
let local: ReturnType<typeof createServer> | undefined;
if (config.socketPath) {
  // The same routes on a unix socket, for a CLI on this machine outside the host's network namespace.
  // It is root's (0600), so its requests are trusted as admin without a token (docs/security.md).
  rmSync(config.socketPath, { force: true });
  local = createServer(localSocketHandler(app));
  await new Promise<void>((r) => local?.listen(config.socketPath, r));
  chmodSync(config.socketPath, 0o600);
}
const pidfile = join(config.stateDir, 'ferryd.pid');
writeFileSync(pidfile, `${process.pid}\n`);
log.info({ url: config.url, socket: config.socketPath, pid: process.pid }, 'ferryd ready');
void agent.accel().catch((e: unknown) => log.warn({ err: e }, 'accelerator probe postponed'));

const shutdown = (sig: string): void => {
  log.info({ sig }, 'ferryd stopping; VMs keep running');
  local?.close();
  void app.close().finally(() => {
    agent.close();
    rmSync(pidfile, { force: true });
    process.exit(0);
  });
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
