import { FerryError } from '../errors/index.js';

const toInt = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const toIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** The first address of [start, end] not in `used`; NO_FREE_IP when the range is used up. */
export function allocateIp(rangeStart: string, rangeEnd: string, used: Iterable<string>): string {
  const taken = new Set(used);
  for (let n = toInt(rangeStart); n <= toInt(rangeEnd); n++) {
    const ip = toIp(n);
    if (!taken.has(ip)) return ip;
  }
  throw new FerryError('NO_FREE_IP', `Every address from ${rangeStart} to ${rangeEnd} is taken by a VM.`);
}
