import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { Agent } from '../agent/agent.js';
import type { AgentConfig } from '../agent/config.js';
import { buildApi } from './server.js';

/** An in-process API for tests: a real agent (host h1) in a temp state folder, no guest image, no network. */
export interface TestApi { dir: string; agent: Agent; app: FastifyInstance; close: () => Promise<void> }

/** Builds a {@link TestApi}; `config` overrides fields of the agent config, `api` buildApi's options. */
export async function testApi(prefix: string, config: Partial<AgentConfig> = {}, api: Parameters<typeof buildApi>[1] = {}): Promise<TestApi> {
  const dir = mkdtempSync(join(tmpdir(), `ferry-${prefix}-`));
  const agent = await Agent.create({
    hostName: 'h1', stateDir: join(dir, 'state'), listen: { host: '127.0.0.1', port: 0 }, url: 'http://127.0.0.1:0',
    bridge: 'br0', vmNetwork: { prefixLength: 16, rangeStart: '10.77.1.1', rangeEnd: '10.77.1.254' },
    pools: [{ name: 'default', path: join(dir, 'pool') }], accel: 'tcg', imageDir: join(dir, 'image'), memoryMiB: 1024, cpus: 2, peers: [],
    ...config,
  }, pino({ level: 'silent' }));
  const app = await buildApi(agent, api);
  return { dir, agent, app, close: async () => { await app.close(); agent.close(); rmSync(dir, { recursive: true, force: true }); } };
}
