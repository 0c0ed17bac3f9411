import { FerryError } from '../errors/index.js';

const UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Parses a size such as `256M`, `1G`, `1.5G` or `1048576` into bytes; throws INVALID_SIZE. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (Number.isSafeInteger(input) && input > 0) return input;
    throw new FerryError('INVALID_SIZE', `The size ${input} is not a positive whole number of bytes.`);
  }
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(input.trim());
  const unit = UNITS[(m?.[2] ?? '').toUpperCase()];
  if (!m || unit === undefined) {
    throw new FerryError('INVALID_SIZE', `The size "${input}" is not a size such as 256M or 1G.`);
  }
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new FerryError('INVALID_SIZE', `The size "${input}" is not a positive size.`);
  }
  return bytes;
}

export const MiB = 1024 * 1024;

/**
 * Parses a VM's memory size into MiB: `256M`, `1G`, or a bare number, which means MiB as in
 * QEMU's `-m 256` (256 bytes of RAM is never what was meant). Throws INVALID_SIZE.
 */
export function parseMemoryMiB(input: string): number {
  let bytes = NaN;
  try { bytes = parseSize(/^\s*\d+(?:\.\d+)?\s*$/.test(input) ? `${input.trim()}M` : input); } catch { /* said below */ }
  if (!Number.isSafeInteger(bytes) || bytes % MiB !== 0) {
    throw new FerryError('INVALID_SIZE', `The memory size "${input}" is not a whole number of MiB such as 256 (MiB), 256M or 1G.`);
  }
  return bytes / MiB;
}

/** Formats bytes for people: 1.5 GiB, 256 MiB, 12 KiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/** SI bit rates, as tc and network people write them. */
const BIT_RATES: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12 };

/**
 * Parses a bandwidth into bytes per second: a bit rate such as `1gbit` or `100mbit` (SI), or a
 * size per second such as `100M/s` (binary, like every other size: 100 MiB/s). `none`, `off`,
 * `unlimited` and `0` mean no cap: null. Throws INVALID_INPUT.
 */
export function parseBandwidth(input: string): number | null {
  const s = input.trim().toLowerCase();
  if (['none', 'off', 'unlimited', '0'].includes(s)) return null;
  const bits = /^(\d+(?:\.\d+)?)([a-z]+)$/.exec(s);
  const unit = bits ? BIT_RATES[bits[2] ?? ''] : undefined;
  let bytes = NaN;
  if (bits && unit !== undefined) bytes = Math.floor((Number(bits[1]) * unit) / 8);
  else if (s.endsWith('/s')) {
    try { bytes = parseSize(input.trim().slice(0, -2)); } catch { bytes = NaN; }
  }
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new FerryError('INVALID_INPUT', `The bandwidth "${input}" is not a rate such as 1gbit, 100mbit or 100M/s, or "none".`);
  }
  return bytes;
}
