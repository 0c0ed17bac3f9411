import { FerryError, type ErrorCode } from '../errors/index.js';

/** The kinds of host-wide work that are limited: disk copies (a storage move here, or a move that carries disks). */
export type SlotKind = 'storage';

/** The code and sentence a caller gets when every slot of a kind is taken. */
const FULL: Record<SlotKind, { code: ErrorCode; what: string }> = {
  storage: { code: 'STORAGE_MIGRATION_LIMIT', what: 'storage migrations' },
};

/**
 * Counts the host's concurrently running operations of each kind against its limits
 * (`maxStorageMigrations`, default 2). Over the limit a caller is refused at once; queueing
 * comes later. One instance per agent, shared by every operation that copies disks.
 */
export class Slots {
  private readonly used = new Map<SlotKind, number>();

  /** `limits` is read on every take, so a changed host setting applies to the next operation. */
  constructor(private readonly limits: () => Record<SlotKind, number>) {}

  /** How many slots of `kind` are taken now. */
  inUse(kind: SlotKind): number { return this.used.get(kind) ?? 0; }

  /**
   * Takes one slot of `kind` and returns its release (safe to call twice), or throws the kind's
   * limit code when all are taken.
   */
  tryTake(kind: SlotKind): () => void {
    const limit = this.limits()[kind];
    const n = this.inUse(kind);
    if (n >= limit) {
      const { code, what } = FULL[kind];
      throw new FerryError(code, `This host already runs ${n} ${what}, its limit; try again when one ends.`);
    }
    this.used.set(kind, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used.set(kind, this.inUse(kind) - 1);
    };
  }
}
