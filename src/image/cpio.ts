/**
 * A writer for the "newc" cpio format the kernel unpacks as its initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Written here rather than
 * driving cpio(1) because it needs no tool, makes device nodes without root (mknod), and
 * gives byte-identical archives for identical inputs (every mtime and owner is 0).
 */

/** One member of the archive. Paths are relative ("bin/busybox"); parents must come first. */
export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = 'TRAILER!!!';

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

interface Member { name: string; mode: number; nlink: number; data: Buffer; rdevMajor: number; rdevMinor: number }

function member(e: CpioEntry): Member {
  const base = { name: e.path, nlink: 1, data: Buffer.alloc(0), rdevMajor: 0, rdevMinor: 0 };
  switch (e.type) {
    case 'dir': return { ...base, mode: S_IFDIR | (e.mode ?? 0o755), nlink: 2 };
    case 'file': return { ...base, mode: S_IFREG | (e.mode ?? 0o644), data: e.data };
    case 'symlink': return { ...base, mode: S_IFLNK | 0o777, data: Buffer.from(e.target) };
    case 'chardev': return { ...base, mode: S_IFCHR | (e.mode ?? 0o600), rdevMajor: e.major, rdevMinor: e.minor };
  }
}

function encode(m: Member, ino: number): Buffer[] {
  const name = Buffer.from(`${m.name}\0`);
  const fields = [ino, m.mode, 0, 0, m.nlink, 0, m.data.length, 0, 0, m.rdevMajor, m.rdevMinor, name.length, 0];
  const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  return [header, name, pad4(header.length + name.length), m.data, pad4(m.data.length)];
}

/** Serialises the entries, in order, followed by the trailer record. */
export function newcArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((e, i) => parts.push(...encode(member(e), i + 1)));
  parts.push(...encode({ name: TRAILER, mode: 0, nlink: 1, data: Buffer.alloc(0), rdevMajor: 0, rdevMinor: 0 }, 0));
  return Buffer.concat(parts);
}
