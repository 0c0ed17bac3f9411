/** The shapes the performance-options benchmark passes between its parts and keeps in its raw JSON. */
import type { PerformanceOption } from '../../src/migration/index.js';
import type { LinkSample } from './link.js';
import type { MoveCpu } from './qemu-cpu.js';
import type { BenchRun, Row } from './types.js';

/** One move: a migration-benchmark row plus the option, the link and what was read around the move. */
export interface OptionRow extends Row {
  option: PerformanceOption;
  /** `unshaped` or the tc rate, e.g. `1gbit`. */
  link: string;
  /** The option the job recorded (`ferry migration show ID --json`, `performance`). */
  usedOption: string | null;
  /** Whether the move ran over TLS (`ferry move --json`, `encrypted`). */
  encrypted: boolean | null;
  /** CPU of the VM's QEMU processes over the move (see qemu-cpu.ts). */
  cpu: MoveCpu | null;
  /** Bytes h2's uplinks received from just before `ferry move` until it returned (eth0 carries the stream; mig0 is the lab's second network). */
  rx: { eth0: number | null; mig0: number | null } | null;
}

/** A link setting: its raw single-stream throughput, measured each time the lab was shaped to it, and whether moves ran on it. */
export interface OptionLink { link: string; bandwidth: string; moves: boolean; samples: LinkSample[] }

/** The whole run, as written to options.raw.json. */
export interface OptionsRun {
  startedAt: string;
  endedAt: string;
  machine: BenchRun['machine'];
  qemu: string;
  accel: string;
  commit: string;
  /** Repetitions asked for and done (a repetition runs every link, VM, workload and option once). */
  repeat: number;
  repsDone: number;
  budgetMin: number;
  /** The baseline every ratio is taken against. */
  baseline: PerformanceOption;
  options: PerformanceOption[];
  /** ms per clock tick of /proc's utime and stime. */
  msPerTick: number;
  links: OptionLink[];
  rows: OptionRow[];
}
