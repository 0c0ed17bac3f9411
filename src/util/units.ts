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

/** Formats bytes for people: 1.5 GiB, 256 MiB, 12 KiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}
