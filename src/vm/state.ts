import { FerryError } from '../errors/index.js';

/** The states CLI.md promises. */
export type VmState = 'running' | 'stopped' | 'migrating' | 'paused' | 'failed';

/** What happens to a VM; the one step function below moves the state. */
export type VmEvent =
  | { type: 'started' }
  /** `reason`: why the VM is stopped, when something other than a user stopped it (shown until it starts again). */
  | { type: 'stopped'; reason?: string }
  | { type: 'paused' }
  | { type: 'resumed' }
  | { type: 'migration-began' }
  /** The destination of a move started its incoming QEMU. */
  | { type: 'incoming' }
  | { type: 'migration-ended' }
  | { type: 'crashed'; reason: string };

const TABLE: Record<VmState, Partial<Record<VmEvent['type'], VmState>>> = {
  stopped: { started: 'running', stopped: 'stopped', incoming: 'migrating' },
  running: { stopped: 'stopped', paused: 'paused', resumed: 'running', 'migration-began': 'migrating', crashed: 'failed' },
  paused: { resumed: 'running', stopped: 'stopped', paused: 'paused', 'migration-began': 'migrating', crashed: 'failed' },
  migrating: { 'migration-ended': 'running', stopped: 'stopped', paused: 'migrating', resumed: 'migrating', crashed: 'failed' },
  failed: { started: 'running', stopped: 'stopped', crashed: 'failed' },
};

/** The one step function of the VM lifecycle; an illegal transition throws VM_BAD_STATE. */
export function step(from: VmState, event: VmEvent): VmState {
  const to = TABLE[from][event.type];
  if (to === undefined) {
    throw new FerryError('VM_BAD_STATE', `A VM that is ${from} cannot take the event "${event.type}".`);
  }
  return to;
}

/** States in which the VM has a QEMU process that uses the host's memory. */
export const isActive = (s: VmState): boolean => s === 'running' || s === 'paused' || s === 'migrating';
