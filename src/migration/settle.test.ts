// MigrationService.settleArrival: a destination whose VM ran here after a move and was powered off
// since (fenced) ends its record as the source's record ended, asked over peer RPC `status`
// (src/cluster/moving.ts calls it). Against a stub source on loopback; no QEMU.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { openDb } from '../util/db.js';
import { JobStore, MigrationService, type MigrationHost, type StatusReply } from './index.js';

/** What the stub source says about job `m1` (null: no answer at all). */
let answer: StatusReply['job'] | 'silent' = null;
let server: Server;
let url = '';

before(async () => {
  server = createServer((req, res) => {
    if (answer === 'silent') { req.socket.destroy(); return; }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ protocol: 1, jobId: 'm1', job: answer, qemu: { alive: false, running: false } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => { server.close(); });

/** A destination host (h2) whose record of move m1 from h1 is in forward `confirm`: the VM ran here. `qemuAlive`: its QEMU still runs. */
function destination(qemuAlive: boolean): { jobs: JobStore; service: MigrationService } {
  const jobs = new JobStore(openDb(':memory:'));
  jobs.create({ id: 'm1', vm: 'v', source: 'h1', destination: 'h2', role: 'destination', options: { includeStorage: false } });
  for (const p of ['perform', 'finish', 'confirm'] as const) jobs.enterPhase('m1', p);
  const h = {
    name: 'h2', log: pino({ level: 'silent' }), jobs, inv: { find: () => undefined },
    peerUrl: () => url, qmp: () => (qemuAlive ? { closed: false } : undefined),
  } as unknown as MigrationHost;
  return { jobs, service: new MigrationService(h) };
}

describe('settleArrival', () => {
  const cases: { name: string; source: StatusReply['job'] | 'silent'; qemuAlive?: boolean; want: string }[] = [
    { name: 'the source gave up (failed): the record ends failed with its error', source: { status: 'failed', phase: 'finish', direction: null, postcopy: false, error: { code: 'MIGRATION_FENCED', message: 'The destination h2 lost its cluster lease.' } }, want: 'failed MIGRATION_FENCED' },
    { name: 'the source completed (its confirm was lost): the record completes', source: { status: 'completed', phase: 'confirm', direction: null, postcopy: false }, want: 'completed' },
    { name: 'the source\'s move still runs: nothing changes (it goes forward when it hears from here)', source: { status: 'running', phase: 'finish', direction: 'forward', postcopy: false }, want: 'running' },
    { name: 'the source does not answer: nothing changes', source: 'silent', want: 'running' },
    { name: 'the source has no record: nothing changes', source: null, want: 'running' },
    { name: 'the VM still runs here: nothing changes, whatever the source says', source: { status: 'failed', phase: 'finish', direction: null, postcopy: false }, qemuAlive: true, want: 'running' },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      answer = c.source;
      const { jobs, service } = destination(c.qemuAlive ?? false);
      await service.settleArrival('v');
      const s = jobs.get('m1').state;
      assert.equal(`${s.status}${'error' in s ? ` ${s.error.code}` : ''}`, c.want);
    });
  }
});
