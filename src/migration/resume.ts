import type { Qmp, RunState } from '../qmp/index.js';
import { RESUME_ANNOUNCE } from './settings.js';

/**
 * Run states a move leaves a VM stopped in: `finish-migrate` (stopped for the last copy),
 * `postmigrate` (the source after a completed stream), `paused` (an incoming VM started with -S
 * whose stream completed, or a source whose cancelled switch-over left it stopped). Only running
 * VMs move, so none of these can be a stop the user asked for.
 */
export const MOVE_STOPPED: readonly RunState[] = ['finish-migrate', 'postmigrate', 'paused'];

/**
 * Lets the VM run on this host: `cont` when the move left it stopped, then `announce-self` so the
 * network learns at once where the VM is. Resolves whether the VM now runs (or, with `postcopy`,
 * will run the moment QEMU has the device state: `cont` on an `inmigrate` VM sets autostart).
 * Only a destination whose post-copy began may pass `postcopy`: anywhere else, autostart on an
 * incomplete stream would run a VM that may still be rolled back.
 */
export async function resumeHere(qmp: Qmp, opts: { postcopy?: boolean } = {}): Promise<boolean> {
  const st = await qmp.execute('query-status');
  if (!st.running) {
    if (!MOVE_STOPPED.includes(st.status) && !(opts.postcopy === true && st.status === 'inmigrate')) return false;
    await qmp.execute('cont');
  }
  await qmp.execute('announce-self', RESUME_ANNOUNCE).catch(() => undefined);
  return true;
}
