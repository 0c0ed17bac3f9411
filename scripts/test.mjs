#!/usr/bin/env node
// Runs the test suite on the compiled output: unit tests next to the code (dist/src/**/*.test.js),
// then integration tests on real QEMU in labs (dist/test/**/*.test.js), one file at a time since
// they share two cores. `node scripts/test.mjs unit|integration` runs one half.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const find = (dir) => {
  let out = [];
  let entries = [];
  try { entries = readdirSync(dir); } catch { return out; }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (e.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
};
const which = process.argv[2] ?? 'all';
const files = [
  ...(which !== 'integration' ? find(join(root, 'dist/src')) : []),
  ...(which !== 'unit' ? find(join(root, 'dist/test')) : []),
];
if (files.length === 0) { console.error('no test files found; run npm run build'); process.exit(1); }
const t0 = Date.now();
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], { stdio: 'inherit' });
console.error(`test suite took ${Math.round((Date.now() - t0) / 1000)} s`);
process.exit(r.status ?? 1);
