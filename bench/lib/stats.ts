/** Small statistics and number formatting for the benchmarks' result tables. */

/** A number for a table cell; `-` when unknown. */
export const n = (v: number | null | undefined, digits = 0): string => (v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));
export const known = (xs: (number | null)[]): number[] => xs.filter((x): x is number => x !== null && Number.isFinite(x));
export const minOf = (xs: (number | null)[]): number | null => (known(xs).length ? Math.min(...known(xs)) : null);
export const maxOf = (xs: (number | null)[]): number | null => (known(xs).length ? Math.max(...known(xs)) : null);

/** The median of the known values; null when there are none. */
export function median(xs: (number | null)[]): number | null {
  const k = known(xs).sort((a, b) => a - b);
  if (k.length === 0) return null;
  const m = Math.floor(k.length / 2);
  return k.length % 2 ? k[m] ?? null : ((k[m - 1] ?? 0) + (k[m] ?? 0)) / 2;
}

/** `median (min–max)`, or the single value. */
export function spread(xs: (number | null)[], digits = 0): string {
  const k = known(xs);
  if (k.length <= 1) return n(k[0], digits);
  return `${n(median(k), digits)} (${n(minOf(k), digits)}–${n(maxOf(k), digits)})`;
}

/** `min–max` of the known values. */
export const range = (xs: (number | null)[], digits = 0): string => `${n(minOf(xs), digits)}–${n(maxOf(xs), digits)}`;
