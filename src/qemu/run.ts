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

/** Runs a host tool whose failure is expected and harmless (deleting what may be gone); true on success. */
export const tryTool = (bin: string, args: string[]): Promise<boolean> => exec(bin, args).then(() => true, () => false);
