// A source recovering after a restart asks the destination to resume the complete copy it holds
// (finish-destination). When the destination answers `resumed: false` (its QEMU went away, or it ran
// the VM and lost it), the move must not end `completed`: no host runs the VM.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { openDb } from '../util/db.js';
import { afterFinishRefused, JobStore, MigrationService, PEER_BASE, PROTOCOL_VERSION, type JobRecord, type MigrationHost, type RecoveryFacts } from './index.js';
import { LOST_THERE_CODE } from './lost-there.js';

const job = { id: 'm1', vm: 'v', source: 'h1', destination: 'h2', role: 'source', options: { includeStorage: false } } as const;
const gone: RecoveryFacts = { sourceQemuAlive: false, sourceRunning: false, destQemuAlive: true, destRunning: false, peerMigrationStatus: 'completed' };

test('a refused finish with the source QEMU gone: the VM is lost, kept stopped on the source, and the message says who could not resume it and why', () => {
  const d = afterFinishRefused({ ...job, state: { status: 'queued' } } as unknown as JobRecord, gone, { code: 'MIGRATION_FAILED', message: 'The destination h2 could not resume "v".' });
  assert.equal(d.kind, 'vm-lost');
  assert.deepEqual(d.steps, ['release']);
  assert.equal(d.end.status, 'failed');
  assert.equal(d.end.status === 'failed' && d.end.error.code, 'QEMU_GONE');
  assert.match(d.end.status === 'failed' ? d.end.error.message : '', /h2 could not resume its complete copy \(h2: The destination h2 could not resume "v"\); no host runs "v"\. It stays on h1, not running: start it/);
});

test('a refused finish while the source still holds a paused copy (post-copy completed): the copy is powered off without running, the VM kept', () => {
  const d = afterFinishRefused({ ...job, state: { status: 'queued' } } as unknown as JobRecord, { ...gone, sourceQemuAlive: true }, undefined);
  assert.deepEqual(d.steps, ['power-off-source', 'release']);
  assert.equal(d.end.status === 'failed' && d.end.error.code, LOST_THERE_CODE);
});

type Answer = 'resumed' | 'refused' | 'error';

/** A destination agent on loopback that answers `status` as holding the complete, paused VM, and `finish` as told. */
async function destination(answer: Answer): Promise<{ server: Server; url: string; finishes: unknown[] }> {
  const finishes: unknown[] = [];
  const body = async (req: IncomingMessage): Promise<unknown> => {
    let s = '';
    for await (const c of req) s += String(c);
    return s ? JSON.parse(s) : undefined;
  };
  const server = createServer((req, res) => {
    void (async () => {
      res.setHeader('content-type', 'application/json');
      const envelope = { protocol: PROTOCOL_VERSION, jobId: 'm1' };
      if (req.method === 'GET' && req.url === `${PEER_BASE}/m1`) {
        res.end(JSON.stringify({ ...envelope, job: { status: 'running', phase: 'perform', direction: 'forward', postcopy: false, ranHere: false }, qemu: { alive: true, running: false, migrationStatus: 'completed' } }));
        return;
      }
      if (req.method === 'POST' && req.url === `${PEER_BASE}/m1/finish`) {
        finishes.push(await body(req));
        if (answer === 'error') {
          res.statusCode = 500;
          res.end(JSON.stringify({ error: { code: 'QEMU_ERROR', message: 'The QEMU monitor failed.' } }));
          return;
        }
        const resumed = answer === 'resumed';
        res.end(JSON.stringify({ ...envelope, resumed, ...(resumed ? {} : { error: { code: 'MIGRATION_FAILED', message: 'The destination h2 could not resume "v".' } }) }));
        return;
      }
      res.statusCode = 404;
      res.end('{}');
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, finishes };
}

const servers: Server[] = [];
after(() => { for (const s of servers) s.close(); });

/** A source job in finish whose QEMU is gone, recovered against `dest`. */
async function recoverAgainst(answer: Answer): Promise<{ jobs: JobStore; finishes: unknown[]; service: MigrationService }> {
  const dest = await destination(answer);
  servers.push(dest.server);
  const jobs = new JobStore(openDb(':memory:'));
  jobs.create(job);
  jobs.apply('m1', { type: 'start' });
  for (const p of ['prepare', 'perform', 'finish'] as const) jobs.enterPhase('m1', p);
  const h = {
    name: 'h1', log: pino({ level: 'silent' }), jobs, inv: { find: () => undefined },
    peerUrl: () => dest.url, qmp: () => undefined,
  } as unknown as MigrationHost;
  const service = new MigrationService(h);
  await service.recover();
  return { jobs, finishes: dest.finishes, service };
}

test('recovery: the destination holds the complete VM but answers finish with resumed: false; the move fails QEMU_GONE instead of completing with the VM nowhere', async () => {
  const { jobs, finishes } = await recoverAgainst('refused');
  assert.equal(finishes.length, 1, 'the source asked the destination to resume the VM once');
  const s = jobs.get('m1').state;
  assert.equal(s.status, 'failed');
  assert.equal(s.status === 'failed' && s.error.code, 'QEMU_GONE');
  assert.match(s.status === 'failed' ? s.error.message : '', /h2 could not resume its complete copy/);
});

test('recovery: the same destination answering resumed: true takes the VM, and the move completes', async () => {
  const { jobs, finishes } = await recoverAgainst('resumed');
  assert.equal(finishes.length, 1);
  assert.equal(jobs.get('m1').state.status, 'completed');
});

test('recovery: a destination whose resume fails with an error (not an answer) leaves the move undecided, to be decided again; never completed', async () => {
  const { jobs, finishes } = await recoverAgainst('error');
  assert.equal(finishes.length, 1);
  assert.equal(jobs.get('m1').state.status, 'running', 'the recovery asks again later');
});
