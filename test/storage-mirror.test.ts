// Integration: a disk mirror's NBD target that stops answering mid-handshake, against a real
// qemu-system-x86_64 (7.2), no guest and no lab needed. QEMU opens an NBD client connection inside
// blockdev-add with its main loop held; before DiskMirrors cut such a connection, a network cut at
// that moment froze the monitor (and the guest's I/O) until TCP gave up, minutes later (a CI run
// saw a move hang for 4 minutes that way).
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FerryError } from '../src/errors/index.js';
import { QmpClient } from '../src/qmp/index.js';
import { DiskMirrors } from '../src/storage/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-mirror-it-'));
const sock = join(dir, 'qmp.sock');
let qemu: ChildProcess | undefined;
let qmp: QmpClient;
let silent: Server;
const held: Socket[] = [];

before(async () => {
  const image = join(dir, 'disk.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
  qemu = spawn('qemu-system-x86_64', [
    '-machine', 'q35', '-accel', 'tcg', '-m', '128', '-nodefaults', '-display', 'none', '-S',
    '-blockdev', `driver=qcow2,node-name=d0,file.driver=file,file.filename=${image}`,
    '-device', 'virtio-blk-pci,id=vd0,drive=d0',
    '-qmp', `unix:${sock},server=on,wait=off`,
  ], { stdio: 'ignore' });
  qmp = await QmpClient.connect(sock, { retryUntilMs: 10_000, timeoutMs: 10_000 });
  // Accepts the TCP connection and never says a word: a destination cut off after the SYN.
  silent = createServer((s) => { s.on('error', () => undefined); held.push(s); });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
});

after(async () => {
  await qmp.close().catch(() => undefined);
  for (const s of held) s.destroy();
  silent.close();
  if (qemu?.pid !== undefined && qemu.exitCode === null && qemu.signalCode === null) process.kill(qemu.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('an NBD target that never answers fails the mirror with STORAGE_FAILED after the connect timeout; QEMU answers again at once', async () => {
  const addr = silent.address();
  assert.ok(addr && typeof addr === 'object');
  const mirrors = new DiskMirrors(qmp, 'cut', 1_500);
  const t0 = Date.now();
  await assert.rejects(
    mirrors.start([{ index: 0, target: { kind: 'nbd', host: '127.0.0.1', port: addr.port, export: 'vd0' } }]),
    (e: unknown) => e instanceof FerryError && e.code === 'STORAGE_FAILED' && /handshake within 2 s/.test(e.message),
  );
  const took = Date.now() - t0;
  assert.ok(took < 8_000, `failed after ${took} ms, not after about the 1.5 s connect timeout`);
  assert.equal((await qmp.execute('query-status', undefined, { timeoutMs: 2_000 })).status, 'prelaunch', 'the monitor is free');
  await mirrors.abort();
  assert.deepEqual(await qmp.execute('query-block-jobs'), []);
});
