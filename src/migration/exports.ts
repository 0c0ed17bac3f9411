/**
 * The destination's side of a storage move's disk copy: NBD exports of the incoming QEMU's new
 * images, which the source's mirrors write into, and their end before the VM runs here.
 */
import type { Qmp } from '../qmp/index.js';
import type { Logger } from 'pino';
import type { NbdTarget } from './protocol.js';
import { exportName, nbdUri, type StoragePlan } from './storage.js';
import { freePort } from '../util/index.js';

/**
 * Serves each new (empty) image over NBD on the migration address, writable, for the source's
 * mirrors. block-export-add activates the incoming QEMU's images for writing.
 */
export async function exportDisks(qmp: Qmp, plan: StoragePlan, host: string, tls?: { creds: string; authz: string }): Promise<NbdTarget[]> {
  if (plan.copies.length === 0) return [];
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort(host);
    try {
      await qmp.execute('nbd-server-start', {
        addr: { type: 'inet', data: { host, port: String(port) } }, ...(tls ? { 'tls-creds': tls.creds, 'tls-authz': tls.authz } : {}),
      });
      break;
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
  for (const c of plan.copies) {
    await qmp.execute('block-export-add', { type: 'nbd', id: exportName(c.index), 'node-name': exportName(c.index), name: exportName(c.index), writable: true });
  }
  return plan.copies.map((c) => ({ sourcePath: c.sourcePath, destinationPath: c.destinationPath, uri: nbdUri(host, port, c.index) }));
}

/** How long the end of one export is waited for before the VM runs anyway (it is immediate once the source let go). */
const EXPORT_GONE_MS = 2_000;

/**
 * Ends a storage move's NBD exports before the VM runs here: while an export holds an image for
 * writing, the guest's disk cannot take its own permissions at `cont` (QEMU logs a permission
 * conflict) and a disk in an I/O thread then hangs. The source let go of them at switch-over,
 * before it sent the last state; `hard` also drops a connection whose close this QEMU has not read
 * yet. An export is gone at BLOCK_EXPORT_DELETED, which may come after the command's answer.
 */
export async function stopExports(qmp: Qmp, n: number, log: Logger): Promise<void> {
  for (let i = 0; i < n; i++) {
    const id = exportName(i);
    const stop = new AbortController();
    const gone = qmp.waitForEvent('BLOCK_EXPORT_DELETED', (d) => d.id === id, { timeoutMs: EXPORT_GONE_MS, signal: stop.signal });
    gone.catch(() => undefined);
    try {
      await qmp.execute('block-export-del', { id, mode: 'hard' });
      await gone;
    } catch (err) {
      log.warn({ export: id, err }, 'a disk export did not end cleanly before the VM resumed');
    } finally {
      stop.abort();
    }
  }
  await qmp.execute('nbd-server-stop').catch(() => undefined);
}
