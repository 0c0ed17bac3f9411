import { FerryError } from '../errors/index.js';

/**
 * The line the guest prints on its serial console (ttyS0) once its HTTP server listens.
 * The agent and the accelerator probe wait for it. Keep in step with guest/workload/main.c.
 */
export const GUEST_READY_MARKER = 'FERRY-GUEST-READY';

/** Test memory the guest allocates and verifies when the caller names none (MiB). */
export const DEFAULT_TEST_MEM_MIB = 32;

/** How one guest is addressed and sized; everything reaches the guest on its kernel command line. */
export interface GuestNetArgs {
  /** IPv4 address of eth0, e.g. 10.77.1.5. */
  ip: string;
  /** Prefix length of the guest's network, e.g. 16. */
  prefixLength: number;
  /** Default gateway; without it the guest reaches only its own network. */
  gateway?: string;
  /** Host name inside the guest (usually the VM name). */
  name: string;
  /** MiB of test memory behind /verify; default 32. */
  testMemMiB?: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

const invalid = (sentence: string): FerryError => new FerryError('INVALID_INPUT', sentence);

/**
 * Builds the guest's kernel command line, e.g.
 * `console=ttyS0 quiet panic=-1 ferry.ip=10.77.1.5/16 ferry.gw=10.77.0.1 ferry.name=t1 ferry.testmem=32`.
 * Every value is validated because a space in any of them would split the command line.
 * @throws FerryError INVALID_INPUT when a value is malformed.
 */
export function guestKernelArgs(a: GuestNetArgs): string {
  if (!IPV4.test(a.ip)) throw invalid(`The guest address "${a.ip}" is not an IPv4 address.`);
  if (!Number.isInteger(a.prefixLength) || a.prefixLength < 1 || a.prefixLength > 32) {
    throw invalid(`The guest prefix length ${a.prefixLength} is not an integer from 1 to 32.`);
  }
  if (a.gateway !== undefined && !IPV4.test(a.gateway)) {
    throw invalid(`The guest gateway "${a.gateway}" is not an IPv4 address.`);
  }
  if (!HOSTNAME.test(a.name)) throw invalid(`The guest name "${a.name}" is not a valid host name.`);
  const mem = a.testMemMiB ?? DEFAULT_TEST_MEM_MIB;
  if (!Number.isInteger(mem) || mem < 1 || mem > 1 << 20) {
    throw invalid(`The guest test memory ${mem} MiB is not a whole number of MiB from 1 upwards.`);
  }
  // quiet: serial output is slow under TCG and would delay the boot. panic=-1: a dead guest
  // reboots at once (the workload's boot id then changes) instead of hanging silently.
  const words = ['console=ttyS0', 'quiet', 'panic=-1', `ferry.ip=${a.ip}/${a.prefixLength}`];
  if (a.gateway !== undefined) words.push(`ferry.gw=${a.gateway}`);
  words.push(`ferry.name=${a.name}`, `ferry.testmem=${mem}`);
  return words.join(' ');
}
