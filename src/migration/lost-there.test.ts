// A destination whose record ended after the VM ran there (lost-there.ts): it says so in its status
// (`ranHere`) and refuses `finish(failure)` and `cancel`; the source's rollBack reads that reply and
// keeps the VM stopped instead of resuming its older copy or letting go. Against a JobStore in memory.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { FerryError } from '../errors/index.js';
import { openDb } from '../util/db.js';
import { JobStore, MigrationService, type JobRecord, type MigrationHost, type Phase } from './index.js';
import { hashJobSecret } from './job-secret.js';
import { destinationLostIt, lostThereMessage, ranHere, ranThenLost, rollBackWord } from './lost-there.js';
import { withKeptImages } from './recover.js';
import { recoveryAction, type RecoveryFacts } from './recovery.js';
import { envelopeFor, type PeerJobView, type StatusReply } from './protocol.js';

const ERR = { code: 'QEMU_GONE', message: 'The VM\'s QEMU on the destination is gone after it had taken the VM over.' } as const;

/** A destination record of job m1 taken to `phase` forward, then ended failed when `end` is set. */
function store(phase: Phase, end: boolean): JobStore {
  const jobs = new JobStore(openDb(':memory:'));
  jobs.create({ id: 'm1', vm: 'v', source: 'h1', destination: 'h2', role: 'destination', options: { includeStorage: false } });
  jobs.keepSecret('m1', hashJobSecret('s3cret'));
  const order: Phase[] = ['perform', 'finish', 'confirm'];
  for (const p of order.slice(0, order.indexOf(phase) + 1)) jobs.enterPhase('m1', p);
  if (end) jobs.apply('m1', { type: 'end', status: 'failed', error: ERR });
  return jobs;
}

function destination(jobs: JobStore): MigrationService {
  const h = {
    name: 'h2', log: pino({ level: 'silent' }), jobs, inv: { find: () => undefined }, peerUrl: () => 'http://127.0.0.1:9',
    qmp: () => undefined, fault: () => undefined, discardIncoming: () => Promise.resolve(),
  } as unknown as MigrationHost;
  return new MigrationService(h);
}

const refusedLost = (e: unknown): boolean => e instanceof FerryError && e.code === 'JOB_BAD_PHASE'
  && /ran on h2 after the switch-over and was lost here since \(QEMU_GONE\).*must not run again/.test(e.message);

describe('a destination record that ended after the VM ran there', () => {
  it('says ranHere in its status, and only then', async () => {
    const rows: [Phase, boolean, boolean][] = [['prepare', true, false], ['perform', true, false], ['finish', true, false], ['confirm', true, true], ['confirm', false, true]];
    for (const [phase, end, want] of rows) {
      const st = await destination(store(phase, end)).destination.status('m1');
      assert.equal(st.job?.ranHere, want, `${phase}${end ? ', ended' : ''}`);
      assert.equal(destinationLostIt(st), want && end, `${phase}${end ? ', ended' : ''}: lost there`);
    }
  });

  it('refuses finish(failure) with JOB_BAD_PHASE and a sentence that says why; the record stays as it was', async () => {
    const jobs = store('confirm', true);
    await assert.rejects(destination(jobs).destination.finish({ ...envelopeFor('m1'), outcome: 'failure', secret: 's3cret' }), refusedLost);
    const s = jobs.get('m1').state;
    assert.ok(s.status === 'failed' && s.error.code === 'QEMU_GONE' && s.failedIn === 'confirm');
  });

  it('refuses cancel with JOB_BAD_PHASE, with or without the secret', async () => {
    const service = destination(store('confirm', true));
    await assert.rejects(service.destination.cancel('m1', 'The source rolled the move back.', 's3cret'), refusedLost);
    await assert.rejects(service.destination.cancel('m1', 'The source rolled the move back.'), refusedLost);
  });

  it('a record that ended before the VM ran there still takes a cancel and a finish(failure) (nothing to refuse)', async () => {
    const service = destination(store('finish', true));
    assert.equal((await service.destination.cancel('m1', 'x')).status, 'failed');
    assert.equal((await service.destination.finish({ ...envelopeFor('m1'), outcome: 'failure', secret: 's3cret' })).resumed, false);
  });
});

const view = (over: Partial<PeerJobView>): PeerJobView => ({ status: 'running', phase: 'finish', direction: 'forward', postcopy: false, ...over });
const reply = (job: PeerJobView | null, running = false, alive = running): StatusReply => ({ ...envelopeFor('m1'), job, qemu: { alive, running } });

describe('the source\'s rollBack reads the destination\'s status', () => {
  const rows: [string, StatusReply | undefined, boolean, string][] = [
    ['no answer', undefined, false, 'back'],
    ['no record', reply(null), false, 'back'],
    ['it runs the VM (confirm)', reply(view({ phase: 'confirm' }), true), false, 'forward'],
    ['completed and running', reply(view({ status: 'completed', phase: 'confirm', direction: null }), true), false, 'forward'],
    ['rolled back before it ran the VM', reply(view({ status: 'failed', direction: null, error: ERR })), false, 'back'],
    ['ran it and lost it (QEMU_GONE after its recovery)', reply(view({ status: 'failed', phase: 'confirm', direction: null, error: ERR, ranHere: true })), false, 'keep-stopped'],
    ['ran it and lost it, cancelled record', reply(view({ status: 'cancelled', phase: 'confirm', direction: null, error: ERR, ranHere: true })), false, 'keep-stopped'],
    ['an older destination: no ranHere, read as before', reply(view({ status: 'failed', phase: 'confirm', direction: null, error: ERR })), false, 'back'],
    ['ranHere while still running in confirm, its QEMU paused: not lost (it owns it)', reply(view({ phase: 'confirm', ranHere: true }), false, true), false, 'back'],
    ['ran it and lost it, this host fenced: the cluster rule ends the move', reply(view({ status: 'failed', phase: 'confirm', direction: null, error: ERR, ranHere: true })), true, 'back'],
  ];
  for (const [name, st, fenced, want] of rows) it(name, () => assert.equal(rollBackWord(st, fenced), want));
});

describe('ranHere and ranThenLost of a record', () => {
  const rec = (state: JobRecord['state'], role: JobRecord['role'] = 'destination'): Pick<JobRecord, 'state' | 'role'> => ({ state, role });
  it('follow the phase the record reached', () => {
    assert.equal(ranHere(rec({ status: 'running', direction: 'forward', phase: 'confirm', postcopy: false })), true);
    assert.equal(ranHere(rec({ status: 'running', direction: 'forward', phase: 'finish', postcopy: false })), false);
    assert.equal(ranHere(rec({ status: 'completed' })), true);
    assert.equal(ranThenLost(rec({ status: 'failed', failedIn: 'confirm', error: ERR })), true);
    assert.equal(ranThenLost(rec({ status: 'failed', failedIn: 'finish', error: ERR })), false);
    assert.equal(ranThenLost(rec({ status: 'failed', failedIn: 'confirm', error: ERR }, 'source')), false, 'a source record never ran the VM "here" in this sense');
  });

  it('the source\'s reason says where the VM ran, that the copy was not run, how to start it, and after a storage move that the destination kept its images', () => {
    const job = { vm: 'web', source: 'h1', destination: 'h2', options: { includeStorage: true } };
    const m = lostThereMessage(job, 'Gone. Its images stay on h2 at /p/web.qcow2.');
    assert.match(m, /^The VM "web" ran on h2 after the switch-over and was lost there \(h2: Gone\. Its images stay on h2 at \/p\/web\.qcow2\); its copy here on h1 was older and was not run\. Start it \(ferry vm start web\) to boot it from its disks\. The disks here are as of the switch-over; h2 kept its newer images/);
    assert.doesNotMatch(lostThereMessage({ ...job, options: { includeStorage: false } }), /images/);
  });
});

describe('the destination\'s recovery: the VM lost after it ran there', () => {
  const facts: RecoveryFacts = { sourceQemuAlive: true, sourceRunning: false, destQemuAlive: false, destRunning: false };
  const run = (includeStorage: boolean): { steps: readonly string[]; message: string; logged: unknown[] } => {
    const jobs = store('confirm', false);
    const job = { ...jobs.get('m1'), options: { includeStorage } };
    const logged: unknown[] = [];
    const h = {
      name: 'h2', log: { warn: (o: unknown) => logged.push(o) },
      inv: { find: () => ({ spec: { disks: [{ path: '/pools/default/v/v-disk0.qcow2' }] } }) },
    } as unknown as MigrationHost;
    const d = recoveryAction('destination', job, facts);
    assert.ok(d.kind === 'vm-lost', d.reason);
    const end = withKeptImages(h, job, d.steps, d.end);
    assert.ok(end.status === 'failed' && end.error.code === 'QEMU_GONE');
    return { steps: d.steps, message: end.error.message, logged };
  };

  it('keeps a storage move\'s images (forget, not clean), logs them and names them in the job\'s message', () => {
    const r = run(true);
    assert.deepEqual(r.steps, ['forget-destination', 'release']);
    assert.match(r.message, /Its images stay on h2 at \/pools\/default\/v\/v-disk0\.qcow2\.$/);
    assert.deepEqual((r.logged[0] as { images: string[] }).images, ['/pools/default/v/v-disk0.qcow2']);
  });

  it('names no images when the move copied none (a shared pool)', () => {
    const r = run(false);
    assert.doesNotMatch(r.message, /images/);
    assert.deepEqual(r.logged, []);
  });
});
