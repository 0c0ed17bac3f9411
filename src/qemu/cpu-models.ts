/**
 * What processors and machine types this host's QEMU can offer a VM (issue 5, processor
 * compatibility). A throwaway QEMU with no machine (`-machine none`) under the host's
 * accelerator answers QMP `query-cpu-definitions` (each model and the features this host lacks
 * for it), `query-machines` and, per model asked about, `query-cpu-model-expansion` (type
 * `full`: every property the model sets). The answers depend on the host's CPU, the kernel,
 * the accelerator and the QEMU build, so they are cached per host key, QEMU version and
 * accelerator, like the accelerator probe (accel.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, toFerryError } from '../errors/index.js';
import { QmpClient, type Qmp } from '../qmp/index.js';
import { probeKey, type Accel } from './accel.js';
import { QEMU_BIN, tempDir } from './process.js';
import { writeCache } from '../util/index.js';

/** One CPU model as this host's QEMU offers it. */
export interface CpuModelDef {
  name: string;
  /** Features this host (its CPU and accelerator) lacks for the model; empty: the model runs here. */
  unavailable: string[];
  /** QEMU says the model's CPUID is the same on every host that runs it (a migration-safe baseline). */
  migrationSafe: boolean;
  aliasOf?: string;
}

/** The cached answer of a probe. */
export interface CpuModelsProbe {
  key: string;
  models: CpuModelDef[];
  /** Machine types QEMU offers (versioned names and their aliases). */
  machines: string[];
  /** Per model asked about: the features its full expansion enables, sorted. */
  features: Record<string, string[]>;
  probedAt: string;
}

/** The models QEMU reports, as {@link CpuModelDef}s. */
export async function readCpuModels(qmp: Qmp): Promise<CpuModelDef[]> {
  const defs = await qmp.execute('query-cpu-definitions', undefined, { timeoutMs: 10_000 });
  return defs.map((d) => ({
    name: d.name, unavailable: [...(d['unavailable-features'] ?? [])].sort(), migrationSafe: d['migration-safe'] ?? false,
    ...(d['alias-of'] ? { aliasOf: d['alias-of'] } : {}),
  }));
}

/** Machine type names and aliases QEMU reports. */
export async function readMachines(qmp: Qmp): Promise<string[]> {
  const ms = await qmp.execute('query-machines', undefined, { timeoutMs: 10_000 });
  return [...new Set(ms.flatMap((m) => (m.alias ? [m.name, m.alias] : [m.name])))].sort();
}

/**
 * The CPU features a model's full expansion turns on, sorted: its boolean properties that are
 * true. QEMU's own knobs (`x-…`) are left out; they are not features a guest sees.
 */
export async function expandCpuModel(qmp: Qmp, model: string): Promise<string[]> {
  const r = await qmp.execute('query-cpu-model-expansion', { type: 'full', model: { name: model } }, { timeoutMs: 10_000 });
  return Object.entries(r.model.props ?? {}).filter(([k, v]) => v === true && !k.startsWith('x-')).map(([k]) => k).sort();
}

/** Where the probe runs; tests point it elsewhere. */
export interface CpuProbeEnv { qemuBin: string; timeoutMs: number }
const DEFAULT_ENV: CpuProbeEnv = { qemuBin: QEMU_BIN, timeoutMs: 20_000 };

/**
 * Starts `QEMU -machine none -accel ACCEL -nodefaults -display none -qmp unix:…`, runs `fn`
 * with its QMP session and ends it. QEMU_START_FAILED when it does not come up.
 */
export async function withProbeQemu<T>(accel: Accel, fn: (qmp: Qmp) => Promise<T>, env: Partial<CpuProbeEnv> = {}): Promise<T> {
  try {
    return await probeQemuOnce(accel, fn, env);
  } catch (e) {
    // A throwaway QEMU that broke its monitor session costs a move its compatibility report: try
    // a fresh one once (a QEMU that cannot start at all fails again, with the same message).
    if (!(e instanceof FerryError) || !RETRY_CODES.has(e.code)) throw e;
    return probeQemuOnce(accel, fn, env);
  }
}

const RETRY_CODES = new Set(['QMP_PROTOCOL', 'QMP_CLOSED', 'QMP_TIMEOUT']);

async function probeQemuOnce<T>(accel: Accel, fn: (qmp: Qmp) => Promise<T>, env: Partial<CpuProbeEnv>): Promise<T> {
  const { qemuBin, timeoutMs } = { ...DEFAULT_ENV, ...env };
  const dir = tempDir('ferry-cpu-', 'The CPU model probe');
  const sock = join(dir, 'qmp.sock');
  let stderr = '';
  const child = spawn(qemuBin, ['-machine', 'none', '-accel', accel, '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString('utf8')).slice(-2000); });
  const exited = new Promise<void>((r) => { child.once('exit', () => r()); child.once('error', () => r()); });
  let qmp: QmpClient | undefined;
  try {
    const gone = exited.then(() => { throw new FerryError('QEMU_START_FAILED', `The CPU model probe's QEMU exited: ${stderr.trim() || 'no message'}.`); });
    gone.catch(() => undefined);
    qmp = await Promise.race([QmpClient.connect(sock, { timeoutMs, retryUntilMs: timeoutMs }), gone]);
    return await fn(qmp);
  } catch (e) {
    throw toFerryError(e, 'QEMU_START_FAILED');
  } finally {
    await qmp?.close().catch(() => undefined);
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * This host's CPU models, machine types and model expansions, probed once per host key, QEMU
 * version and accelerator and kept in `cacheFile`. An expansion not yet cached costs one more
 * short QEMU run.
 */
export class CpuModelProbe {
  private cached?: CpuModelsProbe;
  private running?: Promise<CpuModelsProbe>;

  constructor(private readonly accel: () => Promise<Accel>, private readonly qemuVersion: string, private readonly cacheFile: string,
    private readonly env: Partial<CpuProbeEnv> = {}) {}

  /** Models and machines (and every expansion asked for so far). */
  async probe(): Promise<CpuModelsProbe> {
    if (this.cached) return this.cached;
    this.running ??= this.load().finally(() => { this.running = undefined; });
    return this.running;
  }

  /** The model as this host offers it, or undefined when QEMU here does not know it. */
  async model(name: string): Promise<CpuModelDef | undefined> {
    return (await this.probe()).models.find((m) => m.name === name);
  }

  /** The features the model's full expansion turns on here; undefined for a model QEMU does not know. */
  async features(model: string): Promise<string[] | undefined> {
    const p = await this.probe();
    const have = p.features[model];
    if (have) return have;
    if (!p.models.some((m) => m.name === model)) return undefined;
    const accel = await this.accel();
    const f = await withProbeQemu(accel, (qmp) => expandCpuModel(qmp, model), this.env);
    p.features[model] = f;
    this.save(p);
    return f;
  }

  private async load(): Promise<CpuModelsProbe> {
    const accel = await this.accel();
    const key = `${probeKey()}/qemu-${this.qemuVersion}/${accel}`;
    const c = readCache(this.cacheFile);
    if (c?.key === key) return (this.cached = c);
    const p = await withProbeQemu(accel, async (qmp) => ({
      key, models: await readCpuModels(qmp), machines: await readMachines(qmp), features: {}, probedAt: new Date().toISOString(),
    }), this.env);
    this.save(p);
    return (this.cached = p);
  }

  private save(p: CpuModelsProbe): void { writeCache(this.cacheFile, p); }
}

function readCache(file: string): CpuModelsProbe | undefined {
  try { return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as CpuModelsProbe : undefined; } catch { return undefined; }
}
