import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { FerryError } from '../errors/index.js';
import { QmpClient } from './client.js';
import { isQmpError, QmpError } from './errors.js';
import type { QmpRawEvent } from './events.js';
import { GREETING, ServerConn, TestServer } from './test-server.js';

const isCode = (code: string) => (e: unknown): boolean => e instanceof FerryError && e.code === code;

describe('QmpClient over a unix socket', () => {
  let server: TestServer;
  let client: QmpClient;
  let conn: ServerConn;

  beforeEach(async () => {
    server = await TestServer.start();
    [client, conn] = await Promise.all([QmpClient.connect(server.path, { timeoutMs: 2000 }), server.accepted()]);
  });
  afterEach(async () => {
    await client.close();
    await server.stop();
  });

  it('reads the version from the greeting after negotiating', () => {
    assert.deepEqual(client.version, { qemu: { major: 7, minor: 2, micro: 22 }, package: 'Debian 1:7.2+dfsg-7' });
    assert.deepEqual(client.capabilities, ['oob']);
    assert.equal(client.closed, false);
  });

  it('sends the command with an id and arguments, and resolves with its return', async () => {
    const p = client.execute('migrate-set-parameters', { 'downtime-limit': 50 });
    const msg = await conn.next();
    assert.equal(msg['execute'], 'migrate-set-parameters');
    assert.deepEqual(msg['arguments'], { 'downtime-limit': 50 });
    assert.equal(typeof msg['id'], 'number');
    conn.reply(msg['id']);
    assert.deepEqual(await p, {});
  });

  it('matches replies to calls by id, whatever their order', async () => {
    const a = client.execute('query-status');
    const b = client.execute('query-name');
    const [ma, mb] = [await conn.next(), await conn.next()];
    assert.equal(mb['arguments'], undefined);
    conn.reply(mb['id'], { name: 'vm1' });
    conn.reply(ma['id'], { status: 'running', running: true, singlestep: false });
    assert.deepEqual(await b, { name: 'vm1' });
    assert.equal((await a).status, 'running');
  });

  it('delivers events that interleave with replies, none lost', async () => {
    const seen: string[] = [];
    client.on('RESUME', () => seen.push('RESUME'));
    client.on('MIGRATION', (data, ev) => seen.push(`MIGRATION:${data.status}@${ev.timestamp.seconds}`));
    const resumed = client.waitForEvent('RESUME');
    const migrating = client.waitForEvent('MIGRATION');
    const p = client.execute('cont');
    const msg = await conn.next();
    // QEMU sends RESUME before cont's reply, all in one write here.
    conn.send(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"}\r\n{"return": {}, "id": ${String(msg['id'])}}\r\n`
      + '{"timestamp": {"seconds": 3, "microseconds": 4}, "event": "MIGRATION", "data": {"status": "active"}}\r\n');
    assert.deepEqual(await p, {});
    const ev = await resumed;
    assert.deepEqual(ev, { event: 'RESUME', data: {}, timestamp: { seconds: 1, microseconds: 2 } });
    await migrating;
    assert.deepEqual(seen, ['RESUME', 'MIGRATION:active@3']);
  });

  it('handles a reply split into single bytes and several messages per chunk', async () => {
    const p = client.execute('human-monitor-command', { 'command-line': 'info status' });
    const msg = await conn.next();
    const text = `{"return": "VM status: paused (prélaunch) ✓\\r\\n", "id": ${String(msg['id'])}}\r\n`;
    for (const b of Buffer.from(text)) {
      conn.socket.write(Buffer.from([b]));
      await sleep(0);
    }
    assert.equal(await p, 'VM status: paused (prélaunch) ✓\r\n');
  });

  it('turns an error reply into QMP_ERROR keeping class and desc', async () => {
    const p = client.execute('blockdev-del', { 'node-name': 'nope' });
    const msg = await conn.next();
    conn.send({ id: msg['id'], error: { class: 'GenericError', desc: "Failed to find node with node-name='nope'" } });
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof QmpError && e instanceof FerryError);
      assert.equal(e.code, 'QMP_ERROR');
      assert.equal(e.errorClass, 'GenericError');
      assert.equal(e.desc, "Failed to find node with node-name='nope'");
      assert.equal(e.command, 'blockdev-del');
      assert.equal(e.message, "QEMU refused blockdev-del: GenericError: Failed to find node with node-name='nope'.");
      assert.deepEqual(e.cause, { class: 'GenericError', desc: "Failed to find node with node-name='nope'" });
      assert.ok(isQmpError(e, 'GenericError') && !isQmpError(e, 'CommandNotFound'));
      return true;
    });
  });

  it('times out with QMP_TIMEOUT, drops the late reply and keeps working', async () => {
    const p = client.execute('query-migrate', undefined, { timeoutMs: 30 });
    const late = await conn.next();
    await assert.rejects(p, isCode('QMP_TIMEOUT'));
    conn.reply(late['id'], { status: 'active' });
    const q = client.execute('query-kvm');
    const msg = await conn.next();
    conn.reply(msg['id'], { enabled: false, present: true });
    assert.deepEqual(await q, { enabled: false, present: true });
    assert.equal(client.closed, false);
  });

  it('rejects with ABORTED when the signal fires, and sends nothing for an aborted signal', async () => {
    const ac = new AbortController();
    const p = client.execute('query-block-jobs', undefined, { signal: ac.signal });
    const sent = await conn.next();
    ac.abort(new Error('user cancelled'));
    await assert.rejects(p, isCode('ABORTED'));
    conn.reply(sent['id'], []);
    await assert.rejects(client.execute('stop', undefined, { signal: AbortSignal.abort() }), isCode('ABORTED'));
    const q = client.execute('query-uuid');
    assert.equal((await conn.next())['execute'], 'query-uuid', 'the aborted stop was never sent');
    void q.catch(() => undefined);
  });

  it('rejects pending calls and waits with QMP_CLOSED and emits close when QEMU hangs up', async () => {
    const reasons: (FerryError | undefined)[] = [];
    client.on('close', (r) => reasons.push(r));
    const p = client.execute('query-status');
    const w = client.waitForEvent('SHUTDOWN');
    await conn.next();
    conn.socket.destroy();
    await assert.rejects(p, isCode('QMP_CLOSED'));
    await assert.rejects(w, isCode('QMP_CLOSED'));
    assert.equal(reasons.length, 1);
    assert.equal(reasons[0]?.code, 'QMP_CLOSED');
    assert.equal(client.closed, true);
    await assert.rejects(client.execute('query-status'), isCode('QMP_CLOSED'));
  });

  it('still delivers what QEMU sent before leaving when a command hits the closed socket (EPIPE)', async () => {
    const shutdown = client.waitForEvent('SHUTDOWN');
    conn.event('SHUTDOWN', { guest: true, reason: 'guest-shutdown' });
    conn.socket.destroy();
    // Same tick: the event sits unread in our receive buffer while this write fails.
    const p = assert.rejects(client.execute('query-status'), isCode('QMP_CLOSED'));
    assert.deepEqual((await shutdown).data, { guest: true, reason: 'guest-shutdown' });
    await p;
  });

  it('fails with QMP_PROTOCOL on garbage and closes the connection', async () => {
    const reasons: (FerryError | undefined)[] = [];
    client.on('close', (r) => reasons.push(r));
    const p = client.execute('query-status');
    await conn.next();
    conn.send('this is not json\r\n');
    await assert.rejects(p, isCode('QMP_PROTOCOL'));
    await conn.ended;
    assert.equal(reasons[0]?.code, 'QMP_PROTOCOL');
    await assert.rejects(client.execute('query-status'), isCode('QMP_CLOSED'));
  });

  it('fails with QMP_PROTOCOL on a reply to an id never sent', async () => {
    const p = client.execute('query-status');
    await conn.next();
    conn.reply(9999);
    await assert.rejects(p, isCode('QMP_PROTOCOL'));
  });

  it('close() rejects pending calls with QMP_CLOSED and tells listeners without a reason', async () => {
    const reasons: (FerryError | undefined)[] = [];
    client.on('close', (r) => reasons.push(r));
    const p = assert.rejects(client.execute('query-status'), isCode('QMP_CLOSED'));
    await conn.next();
    await client.close();
    await p;
    await conn.ended;
    assert.deepEqual(reasons, [undefined]);
    await client.close();
  });

  it('passes every event, known or not, to "*" listeners, and off() stops delivery', async () => {
    const raw: QmpRawEvent[] = [];
    const stops: number[] = [];
    const onStop = (): void => { stops.push(1); };
    client.on('*', (ev) => raw.push(ev)).on('STOP', onStop);
    let resumed = client.waitForEvent('RESUME');
    conn.event('STOP');
    conn.event('VNC_CONNECTED', { server: {} });
    conn.event('RESUME');
    await resumed;
    client.off('STOP', onStop);
    resumed = client.waitForEvent('RESUME');
    conn.event('STOP');
    conn.event('RESUME');
    await resumed;
    assert.deepEqual(raw.map((e) => e.event), ['STOP', 'VNC_CONNECTED', 'RESUME', 'STOP', 'RESUME']);
    assert.equal(stops.length, 1);
  });

  it('events() yields the named events in order and ends when the connection closes', async () => {
    const it = client.events(['MIGRATION', 'MIGRATION_PASS']);
    conn.event('MIGRATION', { status: 'setup' });
    conn.event('STOP');
    conn.event('MIGRATION_PASS', { pass: 1 });
    conn.event('MIGRATION', { status: 'completed' });
    const got: string[] = [];
    for await (const ev of it) {
      got.push(ev.event === 'MIGRATION' ? ev.data.status : `pass ${ev.data.pass}`);
      if (got.length === 3) conn.socket.destroy();
    }
    assert.deepEqual(got, ['setup', 'pass 1', 'completed']);
  });

  it('waitForEvent honours the predicate and its timeout', async () => {
    const w = client.waitForEvent('MIGRATION', (d) => d.status === 'completed', { timeoutMs: 2000 });
    conn.event('MIGRATION', { status: 'active' });
    conn.event('MIGRATION', { status: 'completed' });
    assert.equal((await w).data.status, 'completed');
    await assert.rejects(client.waitForEvent('POWERDOWN', undefined, { timeoutMs: 20 }), isCode('QMP_TIMEOUT'));
  });
});

describe('QmpClient.connect', () => {
  const servers: TestServer[] = [];
  const start = async (...a: Parameters<typeof TestServer.start>): Promise<TestServer> => {
    const s = await TestServer.start(...a);
    servers.push(s);
    return s;
  };
  after(async () => { for (const s of servers) await s.stop(); });

  it('fails with QEMU_GONE when nothing listens and no retry is asked for', async () => {
    const s = await start({}, false);
    await assert.rejects(QmpClient.connect(s.path), isCode('QEMU_GONE'));
  });

  it('retries while QEMU is starting, within retryUntilMs', async () => {
    const s = await start({}, false);
    const p = QmpClient.connect(s.path, { retryUntilMs: 3000, timeoutMs: 1000 });
    await sleep(150);
    await s.listen();
    const c = await p;
    assert.equal(c.version.qemu.major, 7);
    await c.close();
  });

  it('times out with QMP_TIMEOUT when no greeting comes (another client holds the monitor)', async () => {
    const s = await start({ greeting: false });
    await assert.rejects(QmpClient.connect(s.path, { timeoutMs: 50 }), isCode('QMP_TIMEOUT'));
  });

  it('fails with QMP_PROTOCOL when the first line is not a greeting', async () => {
    const s = await start({ greeting: '{"return": {}}\r\n' });
    await assert.rejects(QmpClient.connect(s.path, { timeoutMs: 1000 }), isCode('QMP_PROTOCOL'));
  });

  it('skips an event that comes ahead of the greeting (QEMU emits events to a monitor not yet negotiating)', async () => {
    const s = await start({ greeting: `{"event": "RESUME", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}\r\n${GREETING}\r\n` });
    const c = await QmpClient.connect(s.path, { timeoutMs: 1000 });
    assert.equal(c.version.qemu.major, 7);
    await c.close();
  });

  it('fails with QMP_ERROR when negotiation is refused', async () => {
    const s = await start({ negotiate: false });
    const p = QmpClient.connect(s.path, { timeoutMs: 1000 });
    const conn = await s.accepted();
    const msg = await conn.next();
    assert.equal(msg['execute'], 'qmp_capabilities');
    conn.send({ id: msg['id'], error: { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' } });
    await assert.rejects(p, isCode('QMP_ERROR'));
  });

  it('is cancelled with ABORTED, also while retrying', async () => {
    const s = await start({}, false);
    const ac = new AbortController();
    const p = QmpClient.connect(s.path, { retryUntilMs: 10_000, signal: ac.signal });
    await sleep(50);
    ac.abort();
    await assert.rejects(p, isCode('ABORTED'));
  });
});
