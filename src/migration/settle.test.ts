// What src/cluster/moving.ts has MigrationService settle after one end of a move was cut off, against a
// stub peer on loopback (its `status` answer); no QEMU. settleArrival: a destination whose VM ran
// here after a move and was powered off since (fenced) ends its record as the source's record ended.
// giveUpSent: a source whose stream completed and whose destination lost its cluster lease asks the
// destination first, and powers off its paused copy only when the destination's word does not
// settle the move (silent, no record, a VM that ran there and is gone, one that may still run
// there). And MigrationService.fencing's marks last as long as their job, also for jobs no run of
// this agent ends (recovery).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { openDb } from '../util/db.js';
import { JobStore, MigrationService, type JobRecord, type MigrationHost, type StatusReply } from './index.js';

/** What the stub peer answers about job `m1` ('silent': it drops the connection). */
let answer: Partial<Pick<StatusReply, 'job' | 'qemu' | 'jobId'>> | 'silent' = 'silent';
let server: Server;
let url = '';

before(async () => {
  server = createServer((req, res) => {
    if (answer === 'silent') { req.socket.destroy(); return; }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ protocol: 1, jobId: 'm1', ...answer }));
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
  return { jobs, service: new MigrationService(host(jobs, 'h2', qemuAlive ? { closed: false } : undefined)) };
}

/** Host `name` whose peer (h1 or h2) is the stub; `qmp`: the VM's QMP session here, if any. */
function host(jobs: JobStore, name = 'h1', qmp?: { closed: boolean }): MigrationHost {
  return { name, log: pino({ level: 'silent' }), jobs, inv: { find: () => undefined }, peerUrl: () => url, qmp: () => qmp } as unknown as MigrationHost;
}

describe('settleArrival', () => {
  const cases: { name: string; source: StatusReply['job'] | 'silent'; qemuAlive?: boolean; want: string }[] = [
    { name: 'the source gave up (failed): the record ends failed with its error', source: { status: 'failed', phase: 'finish', direction: null, postcopy: false, error: { code: 'MIGRATION_FENCED', message: 'The destination h2 lost its cluster lease.' } }, want: 'failed MIGRATION_FENCED' },
    { name: 'the source completed (its confirm was lost): the record completes', source: { status: 'completed', phase: 'confirm', direction: null, postcopy: false }, want: 'completed' },
    { name: 'the source\'s move still runs: nothing changes (it goes forward when it hears from here)', source: { status: 'running', phase: 'finish', direction: 'forward', postcopy: false }, want: 'running' },
    { name: 'the source does not answer: nothing changes', source: 'silent', want: 'running' },
    { name: 'the source answers but has no record (its state was lost): the record ends failed, the VM lost here (as recovery decides)', source: null, want: 'failed QEMU_GONE' },
    { name: 'the source has no record but the VM still runs here: nothing changes', source: null, qemuAlive: true, want: 'running' },
    { name: 'the VM still runs here: nothing changes, whatever the source says', source: { status: 'failed', phase: 'finish', direction: null, postcopy: false }, qemuAlive: true, want: 'running' },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      answer = c.source === 'silent' ? 'silent' : { job: c.source, qemu: { alive: false, running: false } };
      const { jobs, service } = destination(c.qemuAlive ?? false);
      await service.settleArrival('v');
      const s = jobs.get('m1').state;
      assert.equal(`${s.status}${'error' in s ? ` ${s.error.code}` : ''}`, c.want);
    });
  }
});

describe('settleArrival reads "no record" only from a reply about this job that says so', () => {
  const qemu = { alive: false, running: false };
  const cases: { name: string; reply: Partial<Pick<StatusReply, 'job' | 'qemu' | 'jobId'>> }[] = [
    { name: 'a reply about another job: nothing changes', reply: { jobId: 'm2', job: null, qemu } },
    { name: 'a reply without the job field: nothing changes', reply: { qemu } },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      answer = c.reply;
      const { jobs, service } = destination(false);
      await service.settleArrival('v');
      assert.equal(jobs.get('m1').state.status, 'running');
    });
  }
});

/** Source h1 whose move m1 of `v` to h2 completed its stream (forward `finish`), with a stand-in for its run. */
function source(): { jobs: JobStore; service: MigrationService; woken: string[]; aborted: () => boolean } {
  const jobs = new JobStore(openDb(':memory:'));
  jobs.create({ id: 'm1', vm: 'v', source: 'h1', destination: 'h2', role: 'source', options: { includeStorage: false } });
  jobs.apply('m1', { type: 'start' });
  for (const p of ['prepare', 'perform', 'finish'] as const) jobs.enterPhase('m1', p);
  const service = new MigrationService(host(jobs));
  const woken: string[] = [];
  const ctl = new AbortController();
  const running = (service as unknown as { running: Map<string, unknown> }).running;
  running.set('m1', { ctl, done: Promise.resolve(jobs.get('m1')), run: { askAgain: () => woken.push('m1') } });
  return { jobs, service, woken, aborted: () => ctl.signal.aborted };
}

type View = NonNullable<StatusReply['job']>;
const job = (status: View['status'], phase: View['phase'], direction: View['direction'] = null): View => ({ status, phase, direction, postcopy: false });

describe('giveUpSent asks the destination before it powers off the paused copy', () => {
  const cases: { name: string; dest: Pick<StatusReply, 'job' | 'qemu'> | 'silent'; powersOff: boolean }[] = [
    { name: 'it runs the VM: the move goes forward, nothing is powered off', dest: { job: job('running', 'confirm', 'forward'), qemu: { alive: true, running: true } }, powersOff: false },
    { name: 'it completed and runs the VM: nothing is powered off', dest: { job: job('completed', 'confirm'), qemu: { alive: true, running: true } }, powersOff: false },
    { name: 'it rolled back without running the VM and holds no QEMU: the copy here is the VM, nothing is powered off', dest: { job: { ...job('failed', 'finish'), error: { code: 'MIGRATION_FAILED', message: 'x' } }, qemu: { alive: false, running: false } }, powersOff: false },
    { name: 'it ran the VM and its QEMU is gone since (fenced): powered off', dest: { job: job('running', 'confirm', 'forward'), qemu: { alive: false, running: false } }, powersOff: true },
    { name: 'it ran the VM and ended its record failed since: powered off', dest: { job: { ...job('failed', 'confirm'), error: { code: 'QEMU_GONE', message: 'x' } }, qemu: { alive: false, running: false } }, powersOff: true },
    { name: 'it has not resumed yet and its QEMU lives (it may run the VM): powered off', dest: { job: job('running', 'finish', 'forward'), qemu: { alive: true, running: false } }, powersOff: true },
    { name: 'it rolled back but its QEMU still lives: powered off', dest: { job: { ...job('failed', 'finish'), error: { code: 'MIGRATION_FAILED', message: 'x' } }, qemu: { alive: true, running: false } }, powersOff: true },
    { name: 'it has no record of the move: powered off', dest: { job: null, qemu: { alive: false, running: false } }, powersOff: true },
    { name: 'it does not answer: powered off', dest: 'silent', powersOff: true },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      answer = c.dest;
      const { service, woken, aborted } = source();
      const off: string[] = [];
      await service.giveUpSent('v', 'The destination h2 lost its cluster lease.', () => { off.push('v'); return Promise.resolve(); });
      assert.deepEqual(off, c.powersOff ? ['v'] : []);
      assert.equal(aborted(), c.powersOff, 'the run is ended only with the copy powered off');
      assert.deepEqual(woken, c.powersOff ? [] : ['m1'], 'otherwise the run asks the destination again at once');
    });
  }
});

describe('fencing marks end with their job', () => {
  const fenced = (s: MigrationService): Map<string, unknown> => (s as unknown as { fenced: Map<string, unknown> }).fenced;
  const ends: { name: string; role: JobRecord['role']; end: (jobs: JobStore) => void }[] = [
    { name: 'a source job under recovery (no run of this agent), ended by the recovery', role: 'source', end: (jobs) => jobs.apply('m1', { type: 'end', status: 'failed', error: { code: 'MIGRATION_FAILED', message: 'x' } }) },
    { name: 'a destination job ended without a roll-back here', role: 'destination', end: (jobs) => jobs.apply('m1', { type: 'end', status: 'failed', error: { code: 'MIGRATION_FAILED', message: 'x' } }) },
  ];
  for (const c of ends) {
    it(c.name, () => {
      const jobs = new JobStore(openDb(':memory:'));
      jobs.create({ id: 'm1', vm: 'v', source: 'h1', destination: 'h2', role: c.role, options: { includeStorage: false } });
      if (c.role === 'source') { jobs.apply('m1', { type: 'start' }); jobs.enterPhase('m1', 'prepare'); }
      jobs.enterPhase('m1', 'perform');
      const service = new MigrationService(host(jobs));
      service.fencing('v');
      assert.equal(fenced(service).size, 1, 'marked while the job runs');
      c.end(jobs);
      assert.equal(fenced(service).size, 0, 'dropped when it ends');
    });
  }
});
