// A headless Chromium (Debian's, driven by playwright-core) inside a lab's client namespace, as a
// browser on the lab's client network sees the agents. It runs in the namespace, so it reaches the
// lab hosts and nothing else; the flags below also stop its own background traffic (updates,
// metrics, safe browsing, DNS) so it never tries.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { clientNsName } from '../../src/lab/index.js';
import { repoRoot } from '../../src/util/paths.js';

/** Debian's chromium (scripts/install-deps.sh installs it). */
export const CHROMIUM = process.env.FERRY_CHROMIUM ?? '/usr/bin/chromium';

/** Where a test run saves its screenshots. */
export const SCREENSHOT_DIR = join(repoRoot(), 'dist', 'screenshots');

const OFFLINE_FLAGS = [
  '--no-sandbox', // root in a test VM; the namespace is the fence
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-default-apps',
  '--disable-domain-reliability', '--disable-breakpad', '--disable-client-side-phishing-detection', '--no-pings',
  '--no-first-run', '--metrics-recording-only', '--safebrowsing-disable-auto-update', '--disable-crash-reporter',
  '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions',
  '--disable-dev-shm-usage', '--font-render-hinting=none',
];

/**
 * Launches Chromium in `lab`'s client namespace; `close()` ends it and removes its wrapper. No
 * name resolves but the lab hosts' addresses (`allow`): the dashboard is reached by address, and
 * nothing else should be reached.
 */
export async function launchInLab(lab: string, allow: string[]): Promise<{ browser: Browser; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-chromium-'));
  const wrapper = join(dir, 'chromium-in-ns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${clientNsName(lab)} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const resolver = `--host-resolver-rules=MAP * ~NOTFOUND${allow.map((a) => `, EXCLUDE ${a}`).join('')}`;
  const browser = await chromium.launch({ executablePath: wrapper, headless: true, args: [...OFFLINE_FLAGS, resolver], timeout: 60_000 });
  return { browser, close: async () => { await browser.close().catch(() => undefined); rmSync(dir, { recursive: true, force: true }); } };
}
