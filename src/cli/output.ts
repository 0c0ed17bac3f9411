import Table from 'cli-table3';
import { FerryError, toFerryError } from '../errors/index.js';

/** Prints one JSON document on stdout (the --json contract of CLI.md). */
export const printJson = (v: unknown): void => { process.stdout.write(`${JSON.stringify(v, null, 2)}\n`); };

/** Prints a table for people. */
export function printTable(head: string[], rows: (string | number | null | undefined)[][]): void {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  process.stdout.write(`${t.toString()}\n`);
}

/**
 * Runs a command body; on failure prints `error CODE: sentence` on stderr (or the JSON error
 * document on stdout with --json) and sets a non-zero exit code.
 */
export async function run(json: boolean | undefined, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    fail(e, json);
  }
}

/** A failed command: `error CODE: sentence` on stderr (the JSON error document on stdout with --json), exit 2 unless already non-zero. */
export function fail(e: unknown, json: boolean | undefined): void {
  const err: FerryError = toFerryError(e);
  if (json) printJson({ error: err.toJSON() });
  else process.stderr.write(`error ${err.code}: ${err.message}\n${problemLines(err)}`);
  process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 2;
}

/**
 * A list from every host of the context that some did not answer: says which on stderr, with
 * --json too (stdout holds only the JSON document), so a script can tell "none" from "not asked".
 */
export function warnUnreachable(answers: { unreachable?: string[] }): void {
  if (answers.unreachable?.length) process.stderr.write(`warning: left out, no answer or an error: ${answers.unreachable.join(', ')}\n`);
}

/**
 * A watched job that ended: exit 1 unless it completed; without --json its error also goes to
 * stderr as `error CODE: sentence` (the summary on stdout has it too), as for any failed command.
 */
export function jobEnded(end: { status: string; error?: { code: string; message: string } | null }, json: boolean | undefined): void {
  if (end.status === 'completed') return;
  if (!json && end.error) process.stderr.write(`error ${end.error.code}: ${end.error.message}\n`);
  process.exitCode = 1;
}

/** An INCOMPATIBLE error's report, one `  CODE: sentence` line per problem (empty for other errors). */
function problemLines(err: FerryError): string {
  const list = err.details?.incompatibilities;
  if (!Array.isArray(list)) return '';
  return list.map((p: { code?: unknown; message?: unknown }) => `  ${String(p.code)}: ${String(p.message)}\n`).join('');
}
