/**
 * The link devices Ferry makes: a VM's tap (`fy` and 10 hex digits of its uuid, vm/spec.ts tapName)
 * and a move's hand-over tunnel (`fyx` and 10 of its job id, bridge.ts tunnelName). Deleting one
 * takes the kernel 20–40 ms here (it waits for RCU callbacks before the name is free), so a move's
 * end deletes them in the background ({@link deleteLinkSoon}) rather than make the job wait: a tap
 * of the same name is created only once its deletion ended (tap.ts ensureTap waits for it), and an
 * agent that starts deletes those an earlier run left ({@link sweepLinks}).
 */
import { ipJson, tryTool } from './run.js';

/** Deletions under way, by device name. */
const deleting = new Map<string, Promise<void>>();

/**
 * Deletes a link device; missing is fine. Starts at once (after an earlier deletion of the same name)
 * and never rejects, so a caller may leave it running; the promise resolves when the name is free.
 */
export function deleteLinkSoon(name: string): Promise<void> {
  const before = deleting.get(name) ?? Promise.resolve();
  const done: Promise<void> = before.then(() => tryTool('ip', ['link', 'del', name])).then(() => {
    if (deleting.get(name) === done) deleting.delete(name);
  });
  deleting.set(name, done);
  return done;
}

/** Resolves once no deletion of `name` is under way. */
export async function linkDeleted(name: string): Promise<void> {
  await deleting.get(name);
}

/** A tap or tunnel name Ferry makes. */
const FERRY_LINK = /^fyx?[0-9a-f]{10}$/;

/**
 * Deletes this host's Ferry taps and tunnels for which `keep` says no (not a VM's it knows, not a
 * move's under way): what an agent that stopped during a background deletion left. `keep` is asked
 * right after the listing, with no wait in between, so a VM or move recorded before that is kept,
 * and a tap made for one recorded later waits for the deletion (ensureTap). Resolves once the
 * deletions are under way, with their names.
 */
export async function sweepLinks(keep: (name: string) => boolean): Promise<string[]> {
  const names = ((await ipJson(['-br', 'link', 'show'])) as { ifname?: string }[]).map((l) => l.ifname ?? '').filter((n) => FERRY_LINK.test(n) && !keep(n));
  for (const n of names) void deleteLinkSoon(n);
  return names;
}
