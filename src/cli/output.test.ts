import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jobEnded } from './output.js';

/** Runs `fn` with stderr captured; resolves with what it wrote and the exit code it set. */
function captured(fn: () => void): { stderr: string; exitCode: number | undefined } {
  const write = process.stderr.write.bind(process.stderr);
  const before = process.exitCode;
  let out = '';
  process.stderr.write = ((chunk: string | Uint8Array): boolean => { out += String(chunk); return true; }) as typeof process.stderr.write;
  process.exitCode = undefined;
  try {
    fn();
    return { stderr: out, exitCode: process.exitCode as number | undefined };
  } finally {
    process.stderr.write = write;
    process.exitCode = before;
  }
}

test('a watched job that did not complete: exit 1, and without --json its error on stderr as `error CODE: sentence`', () => {
  const error = { code: 'MIGRATION_CANCELLED', message: 'The move was cancelled.' };
  assert.deepEqual(captured(() => jobEnded({ status: 'cancelled', error }, false)), { stderr: 'error MIGRATION_CANCELLED: The move was cancelled.\n', exitCode: 1 });
  assert.deepEqual(captured(() => jobEnded({ status: 'failed', error }, true)), { stderr: '', exitCode: 1 }, 'with --json the document on stdout has it');
  assert.deepEqual(captured(() => jobEnded({ status: 'completed', error: null }, false)), { stderr: '', exitCode: undefined });
});
