import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../../src/image/index.js';
import { labDown, startLab, stopLab, type LabFixtureOptions } from '../../src/lab/index.js';
import { imageDir } from '../../src/util/paths.js';
import { ferry, type CliResult } from './cli.js';

/** One integration test file's lab: its name, its FERRY_HOME, the CLI for it, and failure tracking. */
export interface LabSuite {
  name: string;
  home: string;
  /** `ferry lab ARGS --name <lab>`. */
  lab(args: string[]): Promise<CliResult>;
  /** Wraps a test body so that a failure makes the lab's logs be dumped when it is taken down. */
  track<A extends unknown[]>(fn: (...a: A) => Promise<void>): (...a: A) => Promise<void>;
}

/**
 * Gives a test file a lab of its own (2 hosts unless `hosts` says) (`<prefix><pid>`) in a FERRY_HOME of its own, so it
 * never touches a person's lab or context: builds the guest image (cached) and brings the lab up
 * before the tests, takes it down after them, dumping both hosts' logs first if a test failed.
 */
export function labSuite(prefix: string, opts: { beforeStop?: () => void; lab?: LabFixtureOptions; hosts?: number } = {}): LabSuite {
  const name = `${prefix}${process.pid}`;
  const home = mkdtempSync(join(tmpdir(), 'ferry-home-'));
  process.env.FERRY_HOME = home;
  let failed = false;
  before(async () => {
    await buildImage({ dir: imageDir() });
    await startLab(name, opts.hosts ?? 2, { accel: 'auto', ...opts.lab });
  });
  after(async () => {
    opts.beforeStop?.();
    await stopLab(name, { failed }).catch(() => labDown(name));
    rmSync(home, { recursive: true, force: true });
  });
  return {
    name, home,
    lab: (args) => ferry(['lab', ...args, '--name', name]),
    track: (fn) => async (...a) => {
      try { await fn(...a); } catch (e) { failed = true; throw e; }
    },
  };
}
