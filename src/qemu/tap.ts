import { deleteLinkSoon, linkDeleted } from './links.js';
import { runTool, tryTool } from './run.js';

const ip = (args: string[]): Promise<void> => runTool('ip', args, 'QEMU_START_FAILED');

/** Creates (or reuses) a tap device attached to the host bridge, up; after a deletion of that name under way. */
export async function ensureTap(tap: string, bridge: string): Promise<void> {
  await linkDeleted(tap);
  const exists = await tryTool('ip', ['link', 'show', tap]);
  if (!exists) await ip(['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  await ip(['link', 'set', tap, 'master', bridge, 'up']);
}

/** Deletes a tap device; missing is fine. The promise may be left running (links.ts). */
export const deleteTap = (tap: string): Promise<void> => deleteLinkSoon(tap);
