import { isConstraintError, type Db } from '../util/db.js';
import { FerryError } from '../errors/index.js';
import type { VmSpec } from './spec.js';
import { step, type VmEvent, type VmState } from './state.js';

/** A VM as the host's inventory holds it. */
export interface VmRecord {
  spec: VmSpec;
  state: VmState;
  /** QEMU's pid while it runs. */
  pid: number | null;
  /** Why the VM is failed, when it is. */
  reason: string | null;
  createdAt: string;
  updatedAt: string;
}

interface Row { name: string; spec: string; state: VmState; pid: number | null; reason: string | null; created_at: string; updated_at: string }

const fromRow = (r: Row): VmRecord => ({
  spec: JSON.parse(r.spec) as VmSpec, state: r.state, pid: r.pid, reason: r.reason, createdAt: r.created_at, updatedAt: r.updated_at,
});

/** Listener told of every state change (the agent turns them into events and logs). */
export type TransitionListener = (name: string, from: VmState, to: VmState, event: VmEvent) => void;

/** The host's VMs in SQLite. Every state change goes through `apply`, the one setter. */
export class Inventory {
  private readonly listeners: TransitionListener[] = [];

  constructor(private readonly db: Db) {
    db.exec(`CREATE TABLE IF NOT EXISTS vms (
      name TEXT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, spec TEXT NOT NULL, state TEXT NOT NULL,
      pid INTEGER, reason TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`);
  }

  onTransition(l: TransitionListener): void { this.listeners.push(l); }

  list(): VmRecord[] {
    return (this.db.prepare('SELECT * FROM vms ORDER BY name').all() as Row[]).map(fromRow);
  }

  find(name: string): VmRecord | undefined {
    const r = this.db.prepare('SELECT * FROM vms WHERE name = ?').get(name) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  get(name: string): VmRecord {
    const r = this.find(name);
    if (!r) throw new FerryError('VM_NOT_FOUND', `No VM named "${name}" is on this host.`);
    return r;
  }

  /** Inserts a new VM in state `stopped`; VM_EXISTS when the name or UUID is taken. */
  insert(spec: VmSpec): VmRecord {
    const now = new Date().toISOString();
    try {
      this.db.prepare('INSERT INTO vms (name, uuid, spec, state, pid, reason, created_at, updated_at) VALUES (?, ?, ?, ?, NULL, NULL, ?, ?)')
        .run(spec.name, spec.uuid, JSON.stringify(spec), 'stopped', now, now);
    } catch (e) {
      // Only the name's (or uuid's) uniqueness makes it a duplicate; a full disk is not one.
      if (!isConstraintError(e)) throw e;
      throw new FerryError('VM_EXISTS', `A VM named "${spec.name}" already exists on this host.`, { cause: e });
    }
    return this.get(spec.name);
  }

  /** Moves a VM's state by one event (throws VM_BAD_STATE if illegal) and records pid and reason. */
  apply(name: string, event: VmEvent, pid?: number | null): VmRecord {
    const cur = this.get(name);
    const to = step(cur.state, event);
    const reason = event.type === 'crashed' ? event.reason : event.type === 'stopped' ? event.reason ?? null : null;
    const newPid = pid !== undefined ? pid : (to === 'stopped' || to === 'failed' ? null : cur.pid);
    this.db.prepare('UPDATE vms SET state = ?, pid = ?, reason = ?, updated_at = ? WHERE name = ?')
      .run(to, newPid, reason, new Date().toISOString(), name);
    for (const l of this.listeners) l(name, cur.state, to, event);
    return this.get(name);
  }

  /**
   * Replaces a VM's spec, for changes that keep its identity (its name and UUID), such as disks
   * that moved to another place. Not a state change: no listener is told.
   */
  updateSpec(spec: VmSpec): VmRecord {
    const cur = this.get(spec.name);
    if (cur.spec.uuid !== spec.uuid) {
      throw new FerryError('INTERNAL', `The spec given for "${spec.name}" belongs to another VM (UUID ${spec.uuid}).`);
    }
    this.db.prepare('UPDATE vms SET spec = ?, updated_at = ? WHERE name = ?').run(JSON.stringify(spec), new Date().toISOString(), spec.name);
    return this.get(spec.name);
  }

  remove(name: string): void {
    this.db.prepare('DELETE FROM vms WHERE name = ?').run(name);
  }
}
