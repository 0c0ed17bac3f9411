// MigrationService.cancel of a source job whose recovery after an agent restart waits: refused past
// the switch-over (post-copy), as for a move this agent runs; no QEMU, the destination silent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { openDb } from '../util/db.js';
import { FerryError } from '../errors/index.js';
import { JobStore, MigrationService, type MigrationHost } from './index.js';

test('a cancel of a source job whose recovery waits for post-copy to end is refused, not silently accepted', async () => {
  const jobs = new JobStore(openDb(':memory:'));
  jobs.create({ id: 'm1', vm: 'v', source: 'h1', destination: 'h2', role: 'source', options: { includeStorage: false } });
  jobs.apply('m1', { type: 'start' });
  for (const p of ['prepare', 'perform'] as const) jobs.enterPhase('m1', p);
  jobs.apply('m1', { type: 'postcopy' });
  const qmp = { closed: false, execute: (cmd: string) => Promise.resolve(cmd === 'query-status' ? { running: false, status: 'postmigrate' } : { status: 'postcopy-active' }) };
  const h = {
    name: 'h1', log: pino({ level: 'silent' }), jobs, inv: { find: () => undefined },
    // Nobody listens there: the destination is silent.
    peerUrl: () => 'http://127.0.0.1:9', qmp: () => qmp,
  } as unknown as MigrationHost;
  const service = new MigrationService(h);
  await service.recover();
  assert.equal(jobs.get('m1').state.status, 'running', 'the recovery waits for post-copy');
  assert.throws(() => service.cancel('m1'), (e: unknown) => e instanceof FerryError && e.code === 'JOB_BAD_PHASE' && /switch-over/.test(e.message));
});
