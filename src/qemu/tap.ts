import { runTool, tryTool } from './run.js';

const ip = (args: string[]): Promise<void> => runTool('ip', args, 'QEMU_START_FAILED');

/** Creates (or reuses) a tap device attached to the host bridge, up. */
export async function ensureTap(tap: string, bridge: string): Promise<void> {
  const exists = await tryTool('ip', ['link', 'show', tap]);
  if (!exists) await ip(['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  await ip(['link', 'set', tap, 'master', bridge]);
  await ip(['link', 'set', tap, 'up']);
}

/** Deletes a tap device; missing is fine. */
export async function deleteTap(tap: string): Promise<void> {
  await tryTool('ip', ['link', 'del', tap]);
}
