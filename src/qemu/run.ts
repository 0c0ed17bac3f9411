import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { FerryError, type ErrorCode } from '../errors/index.js';

const exec = promisify(execFile);

/** Runs a host tool (ip, bridge); a failure becomes a FerryError of `code` quoting the tool's stderr. */
export async function runTool(bin: string, args: string[], code: ErrorCode): Promise<void> {
  try {
    await exec(bin, args);
  } catch (e) {
    const msg = ((e as { stderr?: string }).stderr ?? String(e)).trim().replace(/\.$/, '');
    throw new FerryError(code, `"${bin} ${args.join(' ')}" failed: ${msg}.`, { cause: e });
  }
}

/** `ip -j ARGS` (iproute2's JSON output), parsed; `[]` when it prints nothing. Fails after 10 s. */
export async function ipJson(args: string[]): Promise<unknown> {
  const { stdout } = await exec('ip', ['-j', ...args], { timeout: 10_000, maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout || '[]') as unknown;
}

/** Runs a host tool whose failure is expected and harmless (deleting what may be gone); true on success. */
export const tryTool = (bin: string, args: string[]): Promise<boolean> => exec(bin, args).then(() => true, () => false);
