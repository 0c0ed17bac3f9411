/**
 * The lab as a test fixture: bring a lab up for a test, always take it down afterwards, and
 * when the test failed, put every host's agent log and VM logs on stderr first, since the
 * lab's folder (and so the evidence) goes away with the lab.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { labDir } from '../util/paths.js';
import { labDown, labUp, type LabStatus, type LabUpOptions } from './lab.js';
import { hostIndex } from './plan.js';

/** Options of the fixture: those of `labUp` other than the name and host count. */
export type LabFixtureOptions = Omit<LabUpOptions, 'name' | 'hosts'>;

/** Files under `dir` whose names end in `.log`, one level of subfolders deep (`vms/NAME/*.log`). */
function vmLogs(dir: string): string[] {
  const out: string[] = [];
  let vms: string[];
  try {
    vms = readdirSync(dir);
  } catch {
    return out;
  }
  for (const vm of vms) {
    try {
      for (const f of readdirSync(join(dir, vm))) if (f.endsWith('.log')) out.push(join(dir, vm, f));
    } catch {
      // Not a folder.
    }
  }
  return out;
}

/** Writes each host's ferryd.log and its VMs' logs (stateDir/vms/x/x.log) of lab `name` to stderr. */
export function dumpLabLogs(name: string): void {
  const dir = labDir(name);
  let hosts: string[];
  try {
    hosts = readdirSync(dir).filter((h) => hostIndex(h) !== undefined).sort((a, b) => (hostIndex(a) ?? 0) - (hostIndex(b) ?? 0));
  } catch {
    process.stderr.write(`lab ${name}: no folder ${dir}, no logs.\n`);
    return;
  }
  for (const h of hosts) {
    for (const file of [join(dir, h, 'ferryd.log'), ...vmLogs(join(dir, h, 'vms'))]) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      process.stderr.write(`\n===== lab ${name} ${h}: ${file} =====\n${text}${text.endsWith('\n') ? '' : '\n'}`);
    }
  }
}

/**
 * Brings lab `name` up with `hosts` hosts for a test. When that fails, dumps the logs and
 * takes the half-built lab down before rethrowing.
 */
export async function startLab(name: string, hosts: number, opts: LabFixtureOptions = {}): Promise<LabStatus> {
  try {
    return await labUp({ ...opts, name, hosts });
  } catch (e) {
    dumpLabLogs(name);
    await labDown(name).catch(() => undefined);
    throw e;
  }
}

/** Takes lab `name` down; with `failed`, dumps its logs first. */
export async function stopLab(name: string, opts: { failed?: boolean } = {}): Promise<void> {
  if (opts.failed) dumpLabLogs(name);
  await labDown(name);
}

/**
 * Runs `fn` with lab `name` (of `hosts` hosts) up, and always takes the lab down afterwards;
 * when `fn` throws, dumps the logs first and rethrows. Resolves with what `fn` resolves with.
 *
 * @example
 * await withLab(`t${process.pid}`, 2, async (lab) => { … lab.hosts[0].url … });
 */
export async function withLab<T>(
  name: string, hosts: number, fn: (lab: LabStatus) => Promise<T>, opts: LabFixtureOptions = {},
): Promise<T> {
  const lab = await startLab(name, hosts, opts);
  let failed = true;
  try {
    const result = await fn(lab);
    failed = false;
    return result;
  } finally {
    await stopLab(name, { failed });
  }
}
