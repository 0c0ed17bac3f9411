import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FerryError } from '../errors/index.js';
import { isQmpError, QmpError } from './errors.js';
import { FakeQmp } from './fake.js';
import type { Qmp } from './qmp.js';

const isCode = (code: string) => (e: unknown): boolean => e instanceof FerryError && e.code === code;

describe('FakeQmp', () => {
  it('answers with a fixed return or a handler, asynchronously, and records calls', async () => {
    const qmp: Qmp = new FakeQmp()
      .handle('query-status', { status: 'paused', running: false, singlestep: false })
      .handle('query-cpus-fast', async () => [{ 'cpu-index': 0, 'qom-path': '/machine/unattached/device[0]', 'thread-id': 42, target: 'x86_64' }]);
    let answered = false;
    const p = qmp.execute('query-status').then((r) => { answered = true; return r; });
    assert.equal(answered, false, 'never answers synchronously');
    assert.equal((await p).status, 'paused');
    assert.equal((await qmp.execute('query-cpus-fast'))[0]?.['thread-id'], 42);
    const fake = qmp as FakeQmp;
    assert.deepEqual(fake.calls.map((c) => c.command), ['query-status', 'query-cpus-fast']);
  });

  it('copies arguments and returns as JSON, as the wire would', async () => {
    const fake = new FakeQmp();
    const ret = { status: 'running' as const, running: true, singlestep: false };
    fake.handle('query-status', ret);
    fake.handle('migrate-set-parameters', (args) => {
      assert.deepEqual(args, { 'downtime-limit': 50, 'tls-creds': null });
      return {};
    });
    const got = await fake.execute('query-status');
    (got as { status: string }).status = 'paused';
    assert.equal((await fake.execute('query-status')).status, 'running');
    const args = { 'downtime-limit': 50, 'tls-creds': null };
    await fake.execute('migrate-set-parameters', args);
    args['downtime-limit'] = 1;
    assert.deepEqual(fake.callsTo('migrate-set-parameters').map((c) => c.args), [{ 'downtime-limit': 50, 'tls-creds': null }]);
  });

  it('fails an unscripted command with CommandNotFound, like QEMU', async () => {
    const fake = new FakeQmp();
    await assert.rejects(fake.execute('query-migrate'), (e: unknown) =>
      isQmpError(e, 'CommandNotFound') && e.message === 'QEMU refused query-migrate: CommandNotFound: The command query-migrate has not been found.');
    assert.equal(fake.callsTo('query-migrate').length, 1);
  });

  it('answers qmp_capabilities and query-version by default', async () => {
    const fake = new FakeQmp({ version: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'p' } });
    assert.deepEqual(await fake.execute('qmp_capabilities', {}), {});
    assert.deepEqual(await fake.execute('query-version'), { qemu: { major: 7, minor: 2, micro: 22 }, package: 'p' });
    fake.unhandle('query-version');
    await assert.rejects(fake.execute('query-version'), isCode('QMP_ERROR'));
  });

  it('turns what a handler throws into the error the real client would give', async () => {
    const fake = new FakeQmp()
      .handle('migrate', () => { throw FakeQmp.error('GenericError', 'There is a migration process already'); })
      .handle('blockdev-del', () => { throw new TypeError('boom'); })
      .handle('cont', () => { throw new FerryError('QMP_TIMEOUT', 'Simulated.'); });
    await assert.rejects(fake.execute('migrate', { uri: 'tcp:10.0.0.2:4444' }), (e: unknown) => {
      assert.ok(e instanceof QmpError);
      assert.equal(e.command, 'migrate');
      assert.equal(e.errorClass, 'GenericError');
      assert.equal(e.desc, 'There is a migration process already');
      return true;
    });
    await assert.rejects(fake.execute('blockdev-del', { 'node-name': 'x' }), (e: unknown) => isQmpError(e, 'GenericError') && e.desc === 'boom');
    await assert.rejects(fake.execute('cont'), isCode('QMP_TIMEOUT'));
  });

  it('honours timeouts and abort signals', async () => {
    const fake = new FakeQmp().handle('query-migrate', () => new Promise(() => undefined));
    await assert.rejects(fake.execute('query-migrate', undefined, { timeoutMs: 10 }), isCode('QMP_TIMEOUT'));
    const ac = new AbortController();
    const p = fake.execute('query-migrate', undefined, { signal: ac.signal });
    ac.abort();
    await assert.rejects(p, isCode('ABORTED'));
    await assert.rejects(fake.execute('query-migrate', undefined, { signal: AbortSignal.abort() }), isCode('ABORTED'));
    assert.equal(fake.callsTo('query-migrate').length, 2, 'a call aborted before sending is not recorded');
  });

  it('emits events to listeners, waits and iterators, including from handlers', async () => {
    const fake = new FakeQmp();
    fake.handle('cont', () => { fake.emit('RESUME', {}); return {}; });
    const seen: string[] = [];
    fake.on('RESUME', () => seen.push('on'));
    const w = fake.waitForEvent('RESUME');
    const iter = fake.events(['RESUME', 'MIGRATION']);
    await fake.execute('cont');
    fake.emit('MIGRATION', { status: 'completed' });
    assert.equal((await w).event, 'RESUME');
    assert.deepEqual(seen, ['on']);
    const first = await iter.next();
    const second = await iter.next();
    assert.equal(first.value?.event, 'RESUME');
    assert.equal(second.value?.event === 'MIGRATION' && second.value.data.status, 'completed');
    await iter.return?.();
  });

  it('waitForEvent rejects with the predicate\'s own error and with ABORTED', async () => {
    const fake = new FakeQmp();
    const w = fake.waitForEvent('MIGRATION_PASS', () => { throw new RangeError('bad predicate'); });
    fake.emit('MIGRATION_PASS', { pass: 2 });
    await assert.rejects(w, RangeError);
    await assert.rejects(fake.waitForEvent('STOP', undefined, { signal: AbortSignal.abort() }), isCode('ABORTED'));
  });

  it('events() throws ABORTED when its signal fires', async () => {
    const fake = new FakeQmp();
    const ac = new AbortController();
    const iter = fake.events(undefined, { signal: ac.signal });
    const next = iter.next();
    ac.abort();
    await assert.rejects(next, isCode('ABORTED'));
  });

  it('simulateClose rejects pending calls and waits, ends iterators, and emits close once', async () => {
    const fake = new FakeQmp().handle('query-migrate', () => new Promise(() => undefined));
    const reasons: (FerryError | undefined)[] = [];
    fake.on('close', (r) => reasons.push(r));
    const p = fake.execute('query-migrate');
    const w = fake.waitForEvent('SHUTDOWN');
    const iter = fake.events();
    await new Promise((r) => setImmediate(r));
    fake.simulateClose();
    fake.simulateClose();
    await assert.rejects(p, isCode('QMP_CLOSED'));
    await assert.rejects(w, isCode('QMP_CLOSED'));
    assert.deepEqual(await iter.next(), { value: undefined, done: true });
    assert.equal(reasons.length, 1);
    assert.equal(reasons[0]?.code, 'QMP_CLOSED');
    assert.equal(fake.closed, true);
    await assert.rejects(fake.execute('query-status'), isCode('QMP_CLOSED'));
    await assert.rejects(fake.waitForEvent('STOP'), isCode('QMP_CLOSED'));
    fake.emit('STOP', {});
  });

  it('close() ends the session with no reason', async () => {
    const fake = new FakeQmp();
    const reasons: (FerryError | undefined)[] = [];
    fake.on('close', (r) => reasons.push(r));
    await fake.close();
    await fake.close();
    assert.deepEqual(reasons, [undefined]);
  });
});
