// The destination's prepare and its incoming QEMU in cluster mode, against a FakeQmp (no QEMU, no
// peer): a host that cannot renew its cluster lease refuses an incoming HA VM before anything
// starts; an incoming QEMU that dies is labelled MIGRATION_FENCED only when this host's fence (the
// agent's, or its watchdog's) stopped it, not merely because the host was cut off at the time.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { FerryError } from '../errors/index.js';
import { FakeQmp } from '../qmp/index.js';
import { Pools } from '../storage/index.js';
import type { VmSpec } from '../vm/index.js';
import { openDb } from '../util/db.js';
import { DEFAULT_HOST_SETTINGS, isTerminal, JobStore, MigrationService, type MigrationHost } from './index.js';
import { envelopeFor, type PrepareRequest } from './protocol.js';

const spec = (ha: boolean): VmSpec => ({
  name: 'v', uuid: '00000000-0000-4000-8000-000000000001', memoryMiB: 64, cpus: 1, cpuModel: 'qemu64', machine: 'pc-q35-7.2',
  mac: '52:54:00:00:00:01', ip: '10.0.0.5', prefixLength: 24, disks: [], ha,
});

const request = (ha: boolean): PrepareRequest => ({
  ...envelopeFor('m1'), vm: spec(ha), source: 'h1', destination: 'h2', options: { includeStorage: false }, allowInsecure: true,
});

/**
 * Host h2 with an incoming FakeQmp. `cutOff`: what agents before this change asked (cutOff());
 * `watchdogFired`: whether its fencing watchdog powered the QEMU off; `haRefusal`: why it takes no HA VM.
 */
function rig(o: { haRefusal?: string | null; cutOff?: boolean; watchdogFired?: boolean } = {}): { jobs: JobStore; service: MigrationService; qmp: FakeQmp; started: string[] } {
  const jobs = new JobStore(openDb(':memory:'));
  const qmp = new FakeQmp();
  qmp.handle('migrate-set-capabilities', {}).handle('migrate-set-parameters', {}).handle('migrate-incoming', {})
    .handle('query-migrate', { status: 'setup', 'socket-address': [{ type: 'inet', host: '127.0.0.1', port: '4444' }] });
  const started: string[] = [];
  const h = {
    name: 'h2', log: pino({ level: 'silent' }), jobs, inv: { find: () => undefined }, migrationAddress: '127.0.0.1', bridge: 'br0',
    pools: new Pools([]), peerUrl: () => 'http://127.0.0.1:9', settings: () => ({ ...DEFAULT_HOST_SETTINGS, allowInsecureMigration: true }),
    inMaintenance: () => null, checkCapacity: () => undefined, fault: () => undefined, qmp: () => qmp,
    startIncoming: (s: VmSpec) => { started.push(s.name); return Promise.resolve(qmp); },
    discardIncoming: () => Promise.resolve(),
    cutOff: () => o.cutOff ?? false,
    watchdogFired: () => o.watchdogFired ?? false,
    ...(o.haRefusal !== undefined ? { haRefusal: () => o.haRefusal } : {}),
  } as unknown as MigrationHost;
  return { jobs, service: new MigrationService(h), qmp, started };
}

async function ended(jobs: JobStore, id: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const s = jobs.get(id).state;
    if (isTerminal(s)) return `${s.status}${'error' in s ? ` ${s.error.code}` : ''}`;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the job did not end');
}

describe('prepare of an HA VM on a host that cannot renew its cluster lease', () => {
  it('is refused with CLUSTER_UNAVAILABLE before anything starts: no job, no QEMU', async () => {
    const { jobs, service, started } = rig({ haRefusal: 'Host h2 has not renewed its cluster lease for 6 s.' });
    await assert.rejects(service.destination.prepare(request(true)),
      (e: unknown) => e instanceof FerryError && e.code === 'CLUSTER_UNAVAILABLE' && /not renewed its cluster lease/.test(e.message));
    assert.equal(jobs.find('m1'), undefined, 'no job recorded');
    assert.deepEqual(started, [], 'no incoming QEMU started');
  });

  it('a VM that is not HA is taken (the cluster does not fence it)', async () => {
    const { service, started } = rig({ haRefusal: 'Host h2 has not renewed its cluster lease for 6 s.' });
    const r = await service.destination.prepare(request(false));
    assert.equal(r.migrationUri, 'tcp:127.0.0.1:4444');
    assert.deepEqual(started, ['v']);
  });

  it('an HA VM is taken while the host renews its lease', async () => {
    const { service, started } = rig({ haRefusal: null });
    await service.destination.prepare(request(true));
    assert.deepEqual(started, ['v']);
  });
});

describe('an incoming QEMU that dies: fenced or failed', () => {
  const cases: { name: string; cutOff: boolean; watchdogFired: boolean; agentFenced?: boolean; want: string }[] = [
    { name: 'the host is cut off but its fence stopped nothing: the incoming migration failed', cutOff: true, watchdogFired: false, want: 'failed MIGRATION_INCOMING_FAILED' },
    { name: 'the watchdog powered it off: fenced', cutOff: true, watchdogFired: true, want: 'failed MIGRATION_FENCED' },
    { name: 'the agent\'s fence powered it off (marked first): fenced', cutOff: true, watchdogFired: false, agentFenced: true, want: 'failed MIGRATION_FENCED' },
    { name: 'in service: failed', cutOff: false, watchdogFired: false, want: 'failed MIGRATION_INCOMING_FAILED' },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { jobs, service, qmp } = rig({ cutOff: c.cutOff, watchdogFired: c.watchdogFired });
      await service.destination.prepare(request(true));
      if (c.agentFenced) service.fencing('v');
      qmp.emit('MIGRATION', { status: 'failed' });
      assert.equal(await ended(jobs, 'm1'), c.want);
    });
  }
});
