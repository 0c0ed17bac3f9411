// Reading the overview: every job once (its source's record), VMs of every host.
import type { Job, Overview, Vm } from './types';

/**
 * Every move once: a move between two hosts is a job on each; the source's record carries the
 * progress and totals. A destination's record stands in when its source did not answer.
 */
export function sourceJobs(ov: Overview): Job[] {
  const all = ov.hosts.flatMap((h) => h.data?.migrations ?? []);
  const sources = all.filter((j) => j.role === 'source');
  const seen = new Set(sources.map((j) => j.id));
  const orphans = all.filter((j) => j.role === 'destination' && !seen.has(j.id));
  return [...sources, ...orphans].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** Every VM of every host that answered; a VM arriving by a move shows on its source only. */
export const allVms = (ov: Overview): Vm[] =>
  ov.hosts.flatMap((h) => (h.data?.vms ?? []).filter((v) => !v.incoming)).sort((a, b) => a.name.localeCompare(b.name));

export const selfName = (ov: Overview): string | undefined => ov.hosts.find((h) => h.self)?.name;
