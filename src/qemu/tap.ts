import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { FerryError } from '../errors/index.js';

const run = promisify(execFile);

async function ip(args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (e) {
    const msg = ((e as { stderr?: string }).stderr ?? String(e)).trim();
    throw new FerryError('QEMU_START_FAILED', `"ip ${args.join(' ')}" failed: ${msg}`, { cause: e });
  }
}

/** Creates (or reuses) a tap device attached to the host bridge, up. */
export async function ensureTap(tap: string, bridge: string): Promise<void> {
  const exists = await run('ip', ['link', 'show', tap]).then(() => true, () => false);
  if (!exists) await ip(['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  await ip(['link', 'set', tap, 'master', bridge]);
  await ip(['link', 'set', tap, 'up']);
}

/** Deletes a tap device; missing is fine. */
export async function deleteTap(tap: string): Promise<void> {
  await run('ip', ['link', 'del', tap]).catch(() => undefined);
}
