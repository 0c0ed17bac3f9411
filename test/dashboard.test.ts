// Integration: the dashboard (issue 8) in a real browser — Debian's Chromium, headless, driven by
// playwright-core from the lab's client namespace — against h1's ferryd on a 2-host lab with real
// QEMU. An operator signs in, sees both hosts (h2 through h1's peer overview) and the VMs, is told
// why a move cannot happen (the compatibility report), moves a VM from the dialog and watches its
// progress bar to the end and into the history, stops and starts a VM, cancels a move, drains h1
// and resumes it with failback; a
// viewer sees the same views with no actions, and the API refuses its move with 403. Every view
// is saved as a screenshot under dist/screenshots/.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { labStatus } from '../src/lab/index.js';
import type { VmView } from '../src/agent/views.js';
import { labSuite } from './support/suite.js';
import { ferry, guestGet, waitFor } from './support/cli.js';
import { assertGuestIntact, assertRunsOnce, guestState, vmsByHost, waitGuest } from './support/invariants.js';
import { launchInLab, SCREENSHOT_DIR } from './support/browser.js';

const suite = labSuite('dash');
const LAB = suite.name;
const { track } = suite;
let browser: Browser | undefined;
let closeBrowser: (() => Promise<void>) | undefined;
after(async () => { await closeBrowser?.(); });

async function h1Url(): Promise<string> {
  const url = (await labStatus(LAB)).hosts.find((h) => h.name === 'h1')?.url;
  assert.ok(url, 'the lab has h1');
  return url;
}

/** The lab hosts' addresses, the only ones the browser may resolve. */
async function labAddresses(): Promise<string[]> {
  return (await labStatus(LAB)).hosts.map((h) => new URL(h.url).hostname);
}

/** `ferry token create NAME --role R --host h1` over h1's unix socket (as an admin on the host). */
async function makeToken(name: string, role: string): Promise<string> {
  const r = await ferry<{ token: string }>(['token', 'create', name, '--role', role, '--host', 'h1', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  return r.json.token;
}

async function createVm(name: string): Promise<VmView> {
  const r = await ferry<VmView>(['vm', 'create', name, '--host', 'h1', '--memory', '256M', '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  await waitGuest(LAB, r.json.ip);
  return r.json;
}

async function hostSettings(host: string, args: string[]): Promise<void> {
  const r = await ferry(['host', 'settings', host, ...args, '--json']);
  assert.equal(r.code, 0, r.stderr || r.stdout);
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOT_DIR, `dashboard-${name}.png`), fullPage: true });
}

async function signIn(token: string): Promise<Page> {
  assert.ok(browser);
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await page.goto(`${await h1Url()}/ui/`);
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('.top .who .role');
  return page;
}

const view = async (page: Page, v: string): Promise<void> => { await page.click(`a[data-view="${v}"]`); };

/** Waits until the progress bar of `vm`'s move shows at least `pct`. */
async function barReaches(page: Page, vm: string, pct: number, timeoutMs: number): Promise<void> {
  const bar = page.locator(`.move[data-vm="${vm}"] [role=progressbar]`);
  await waitFor(`${vm}'s progress bar at ${pct}%`, async () => Number(await bar.getAttribute('aria-valuenow', { timeout: 1000 })) >= pct, timeoutMs);
}

/** Reads the progress bar of `vm`'s move until its card goes; the values it showed. */
async function followBar(page: Page, vm: string, timeoutMs: number): Promise<number[]> {
  const seen: number[] = [];
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await page.locator(`.move[data-vm="${vm}"] [role=progressbar]`).getAttribute('aria-valuenow', { timeout: 500 }).catch(() => null);
    if (v === null) break;
    seen.push(Number(v));
    await page.waitForTimeout(200);
  }
  return seen;
}

test('dashboard: an operator signs in, sees both hosts and the VMs, moves a VM from the dialog to completion and history', { timeout: 900_000 }, track(async () => {
  const [vm] = await Promise.all([createVm('dash1'), createVm('dash2')]);
  assert.ok(vm);
  const operator = await makeToken('dash-operator', 'operator');
  ({ browser, close: closeBrowser } = await launchInLab(LAB, await labAddresses()));

  // A wrong token: the API's code and sentence on the sign-in form.
  const ctx0 = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  const login = await ctx0.newPage();
  await login.goto(`${await h1Url()}/ui/`);
  await shot(login, 'login');
  await login.fill('#token', 'ferry_wrong');
  await login.click('button[type=submit]');
  assert.match(await login.locator('[data-testid=error]').innerText(), /UNAUTHENTICATED/);
  await ctx0.close();

  const page = await signIn(operator);
  assert.match(await page.locator('.top .who').innerText(), /dash-operator\s+operator/i);

  // Hosts: both lab hosts, h2 read through h1 (peer overview), with capacity and settings.
  await page.waitForSelector('[data-host="h2"] .badge[data-state="ready"]');
  await page.waitForSelector('[data-host="h1"] .badge[data-state="ready"]');
  assert.match(await page.locator('[data-host="h2"]').innerText(), /Memory for VMs[\s\S]*Migration settings/i);
  assert.match(await page.locator('[data-host="h2"] [data-testid=cluster]').innerText(), /Standalone/, 'a lab without --cluster is standalone');
  await shot(page, 'hosts');

  // VMs: both, on h1, running.
  await view(page, 'vms');
  await page.waitForSelector('tr[data-vm="dash1"] [data-state="running"]');
  await page.waitForSelector('tr[data-vm="dash2"] [data-state="running"]');
  assert.equal(await page.locator('tr[data-vm="dash1"] [data-col="host"]').innerText(), 'h1');
  await shot(page, 'vms');

  // The dialog shows the compatibility report first: h2 refusing incoming moves is named by code.
  await hostSettings('h2', ['--incoming', 'off']);
  await page.click('tr[data-vm="dash1"] [data-action="move"]');
  await page.waitForSelector('[data-compatible="false"]');
  const problems = await page.locator('[data-testid=compat-report]').innerText();
  assert.match(problems, /\b[A-Z][A-Z_]+\b/, `the report names a code: ${problems}`);
  assert.equal(await page.locator('[data-action="start-move"]').isDisabled(), true, 'an incompatible move cannot be started');
  await shot(page, 'move-incompatible');
  await page.click('.dialog button.ghost');
  await hostSettings('h2', ['--incoming', 'on']);

  // A move slow enough to watch: h1 caps its stream and the guest keeps dirtying memory.
  await hostSettings('h1', ['--max-bandwidth', '12M/s']);
  assert.equal((await guestGet(LAB, vm.ip, '/dirty?mbps=4')).trim(), 'ok');
  const before = await guestState(LAB, vm.ip);
  await page.click('tr[data-vm="dash1"] [data-action="move"]');
  await page.waitForSelector('[data-compatible="true"]');
  await shot(page, 'move-dialog');
  await page.click('[data-action="start-move"]');

  // Live migrations: the bar moves with the event stream, then the move finishes.
  await page.waitForSelector('.move[data-vm="dash1"]', { timeout: 30_000 });
  assert.equal(await page.locator('a[data-view="migrations"].active').count(), 1, 'starting a move opens the live view');
  await barReaches(page, 'dash1', 35, 120_000);
  await shot(page, 'migration-running');
  const bar = await followBar(page, 'dash1', 300_000);
  await page.waitForSelector('.finished li:has-text("dash1") [data-state="completed"]', { timeout: 60_000 });
  console.log(`dashboard: the progress bar showed ${bar.length} readings, ${bar.slice(0, 1)}% → ${bar.slice(-1)}% (max ${Math.max(...bar)}%)`);
  assert.ok(bar.length >= 3 && Math.max(...bar) >= 50, `the bar was seen moving: ${bar.join(',')}`);
  await shot(page, 'migration-finished');

  // The VM runs once, on h2, intact; the dashboard shows it there and in the history.
  await assertRunsOnce(LAB, 'dash1', 'h2');
  await assertGuestIntact(LAB, vm.ip, before);
  await view(page, 'history');
  await page.waitForSelector('tr[data-vm="dash1"] [data-state="completed"]');
  const row = await page.locator('tr[data-vm="dash1"]').first().innerText();
  assert.match(row, /h1 → h2/);
  assert.match(row, /\d+(\.\d+)? (ms|s)/, `total time and downtime are shown: ${row}`);
  assert.equal(await page.locator('[data-testid=downtime-chart] rect').count() >= 1, true, 'the chart has a bar');
  await shot(page, 'history');
  await view(page, 'vms');
  await waitFor('dash1 listed on h2', async () => (await page.locator('tr[data-vm="dash1"] [data-col="host"]').innerText()) === 'h2', 10_000);

  // Stop and start a VM from the table.
  await page.click('tr[data-vm="dash2"] [data-action="stop"]');
  await page.waitForSelector('tr[data-vm="dash2"] [data-state="stopped"]', { timeout: 90_000 });
  await page.click('tr[data-vm="dash2"] [data-action="start"]');
  await page.waitForSelector('tr[data-vm="dash2"] [data-state="running"]', { timeout: 60_000 });
  const dash2 = (await ferry<VmView>(['vm', 'show', 'dash2', '--json'])).json;
  await waitGuest(LAB, dash2.ip);

  // Cancel a move from its card: the VM stays on h1.
  await hostSettings('h1', ['--max-bandwidth', '4M/s']);
  assert.equal((await guestGet(LAB, dash2.ip, '/dirty?mbps=4')).trim(), 'ok');
  await page.click('tr[data-vm="dash2"] [data-action="move"]');
  await page.waitForSelector('[data-compatible="true"]');
  await page.click('[data-action="start-move"]');
  await page.waitForSelector('.move[data-vm="dash2"] [data-action="cancel"]', { timeout: 30_000 });
  await barReaches(page, 'dash2', 1, 120_000);
  await page.click('.move[data-vm="dash2"] [data-action="cancel"]');
  await page.waitForSelector('.finished li:has-text("dash2") [data-state="cancelled"]', { timeout: 60_000 });
  await assertRunsOnce(LAB, 'dash2', 'h1');
  await hostSettings('h1', ['--max-bandwidth', 'none']);

  // Drain h1 from its card: dash2 moves to h2 and h1 shows drained with its ledger; resume with
  // failback brings dash2 back (h2 moves it, and h1's page shows that move through the overview).
  await view(page, 'hosts');
  await page.click('[data-host="h1"] [data-action="drain"]');
  await page.waitForSelector('[data-host="h1"] .badge[data-state="drained"]', { timeout: 240_000 });
  await page.waitForSelector('[data-host="h1"] [data-testid=maintenance] [data-state="moved"]');
  await assertRunsOnce(LAB, 'dash2', 'h2');
  await shot(page, 'host-drained');
  await page.check('[data-host="h1"] #failback');
  await page.click('[data-host="h1"] [data-action="resume"]');
  await page.waitForSelector('[data-host="h1"] .badge[data-state="ready"]', { timeout: 30_000 });
  // The destination runs the VM before the source's confirm drops its paused copy: wait for both.
  await waitFor('dash2 back on h1 (and h2\'s copy confirmed away)', async () => {
    const by = await vmsByHost(LAB);
    return (by.get('h1') ?? []).some((v) => v.name === 'dash2' && v.state === 'running') && !(by.get('h2') ?? []).some((v) => v.name === 'dash2');
  }, 240_000);
  await assertRunsOnce(LAB, 'dash2', 'h1');

  await view(page, 'history');
  await page.waitForSelector('tr[data-vm="dash2"] [data-state="cancelled"]');
  await waitFor('the failback in h1\'s history', async () => (await page.locator('tr[data-vm="dash2"] [data-state="completed"]').count()) >= 2, 30_000);
  await shot(page, 'history-full');
  await page.context().close();
}));

test('dashboard: a viewer sees hosts, VMs and history but no actions; the API refuses its move with 403', { timeout: 300_000 }, track(async () => {
  if (!browser) ({ browser, close: closeBrowser } = await launchInLab(LAB, await labAddresses()));
  const viewer = await makeToken('dash-viewer', 'viewer');
  const page = await signIn(viewer);
  assert.match(await page.locator('.top .who').innerText(), /dash-viewer\s+viewer/i);
  await page.waitForSelector('[data-host="h2"] .badge[data-state="ready"]');
  assert.equal(await page.locator('.host button').count(), 0, 'no drain or resume for a viewer');
  await shot(page, 'viewer-hosts');
  await view(page, 'vms');
  await page.waitForSelector('tr[data-vm="dash2"]');
  assert.equal(await page.locator('[data-action]').count(), 0, 'no move, start or stop for a viewer');
  await shot(page, 'viewer-vms');
  await view(page, 'history');
  await page.waitForSelector('tr[data-vm="dash1"]');
  // What a button would have sent: refused by the API, with its code.
  const refused = await page.evaluate<{ status: number; body: { error?: { code: string } } }>(`(async () => {
    const r = await fetch('/v1/migrations', {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + sessionStorage.getItem('ferry.token') },
      body: JSON.stringify({ vm: 'dash2', destination: 'h2' }),
    });
    return { status: r.status, body: await r.json() };
  })()`);
  assert.deepEqual([refused.status, refused.body.error?.code], [403, 'FORBIDDEN']);
  await assertRunsOnce(LAB, 'dash2', 'h1');
  await page.context().close();
}));
