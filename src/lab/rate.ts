/**
 * Link rates in tc's notation (`100mbit`, `1gbit`, `50mbps`) and the token-bucket sizes that
 * shape a lab link to them. Pure.
 */
import { FerryError } from '../errors/index.js';

/** A parsed rate: what the user wrote (normalised) and bits per second. */
export interface Rate { text: string; bitsPerSecond: number }

// tc's units: SI multiples, `bit` for bits and `bps` for bytes per second.
const UNITS: Record<string, number> = {
  bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12,
  bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9, tbps: 8e12,
};

/** Words that mean "no shaping" for `--bandwidth`. */
const UNSHAPED = new Set(['none', 'off', 'unlimited', '0']);

/**
 * Parses `--bandwidth`: a rate such as `1gbit`, or `none` (also `off`, `0`) for an unshaped
 * link, returned as null. Throws INVALID_INPUT otherwise.
 */
export function parseRate(input: string): Rate | null {
  const s = input.trim().toLowerCase();
  if (UNSHAPED.has(s)) return null;
  const m = /^(\d+(?:\.\d+)?)([a-z]+)$/.exec(s);
  const unit = m ? UNITS[m[2] ?? ''] : undefined;
  const bits = m && unit !== undefined ? Math.round(Number(m[1]) * unit) : NaN;
  // Under 8 kbit/s a single full-size frame takes seconds: nothing in the lab would work.
  if (!m || !Number.isSafeInteger(bits) || bits < 8000) {
    throw new FerryError('INVALID_INPUT',
      `The bandwidth "${input}" is not a rate such as 100mbit or 1gbit (at least 8kbit), or "none".`);
  }
  return { text: s, bitsPerSecond: bits };
}

/**
 * The token bucket (bytes) for a tbf qdisc at `bitsPerSecond`: 10 ms worth of data, so the
 * bucket refills faster than the kernel's timer tick at any rate, and never under 32 KiB so a
 * burst of full-size frames (and GSO super-frames) fits.
 */
export function tbfBurstBytes(bitsPerSecond: number): number {
  return Math.max(32 * 1024, Math.ceil(bitsPerSecond / 8 / 100));
}

/** The `tc qdisc replace … root` arguments after `dev X root` that shape a link to `rate`. */
export function tbfArgs(rate: Rate): string[] {
  return ['tbf', 'rate', `${rate.bitsPerSecond}bit`, 'burst', String(tbfBurstBytes(rate.bitsPerSecond)), 'latency', '50ms'];
}
