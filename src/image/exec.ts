import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { FerryError } from '../errors/index.js';

const execFileP = promisify(execFile);

/** Options for one tool run during a build. */
export interface ToolOptions { cwd?: string; signal?: AbortSignal; env?: NodeJS.ProcessEnv }

/** The last non-empty line of a tool's stderr, which is where apt, gcc and friends say why. */
function why(e: unknown): string {
  const err = e as { stderr?: string | Buffer; code?: unknown; message?: string };
  const text = err.stderr ? err.stderr.toString() : '';
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (err.code === 'ENOENT') return 'the program is not installed';
  return (lines.at(-1) ?? err.message ?? 'unknown error').replace(/\.$/, '');
}

/** A FerryError('IMAGE_BUILD_FAILED') whose one sentence names the step. */
export function stepFailed(step: string, cause: unknown): FerryError {
  if (cause instanceof FerryError) return cause;
  if (cause instanceof Error && cause.name === 'AbortError') {
    return new FerryError('ABORTED', `${step} was cancelled.`, { cause });
  }
  return new FerryError('IMAGE_BUILD_FAILED', `${step} failed: ${why(cause)}.`, { cause });
}

/**
 * Runs a tool and returns its stdout as text; on failure throws IMAGE_BUILD_FAILED naming
 * `step` (a phrase such as "Downloading linux-image-6.1.0-56-amd64").
 */
export async function tool(step: string, cmd: string, args: readonly string[], opts: ToolOptions = {}): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { ...opts, encoding: 'utf8', maxBuffer: 64 << 20 });
    return stdout;
  } catch (e) {
    throw stepFailed(step, e);
  }
}

/** Like tool() but returns stdout as bytes (decompressed modules). */
export async function toolBytes(step: string, cmd: string, args: readonly string[], opts: ToolOptions = {}): Promise<Buffer> {
  try {
    const { stdout } = await execFileP(cmd, args, { ...opts, encoding: 'buffer', maxBuffer: 256 << 20 });
    return stdout;
  } catch (e) {
    throw stepFailed(step, e);
  }
}

/** True when the program answers (used for optional helpers such as modinfo). */
export async function hasTool(cmd: string, args: readonly string[] = ['--version']): Promise<boolean> {
  try {
    await execFileP(cmd, args, { encoding: 'utf8' });
    return true;
  } catch {
    return false;
  }
}
