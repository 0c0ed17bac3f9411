/**
 * The typed QMP event map (QEMU 7.2): event name → the type of its `data`. QEMU omits
 * `data` for events without members (STOP, RESUME, POWERDOWN…); Ferry delivers `{}` then.
 */
import type { QmpEmpty, SocketAddress } from './qapi-common.js';
import type { JobStatus, JobType } from './qapi-block.js';
import type { MigrationStatus } from './qapi-migration.js';

/** QAPI `ShutdownCause`. */
export type ShutdownCause =
  | 'none' | 'host-error' | 'host-qmp-quit' | 'host-qmp-system-reset' | 'host-signal'
  | 'host-ui' | 'guest-shutdown' | 'guest-reset' | 'guest-panic' | 'subsystem-reset'
  | 'snapshot-load';

/** Data of the BLOCK_JOB_READY / _CANCELLED / _COMPLETED events; `device` is the job id. */
export interface BlockJobEventData {
  type: JobType;
  device: string;
  len: number;
  offset: number;
  speed: number;
}

/** QMP events Ferry listens to, keyed by name. */
export interface QmpEvents {
  STOP: QmpEmpty;
  RESUME: QmpEmpty;
  /** `guest` tells a guest-initiated shutdown from one QEMU or its user asked for. */
  SHUTDOWN: { guest: boolean; reason: ShutdownCause };
  POWERDOWN: QmpEmpty;
  RESET: { guest: boolean; reason: ShutdownCause };
  SUSPEND: QmpEmpty;
  WAKEUP: QmpEmpty;
  GUEST_PANICKED: { action: 'pause' | 'poweroff' | 'run'; info?: Record<string, unknown> };
  /** Only emitted when the `events` migration capability is on. */
  MIGRATION: { status: MigrationStatus };
  /** A new pass over dirty RAM began (1 is the bulk copy); needs the `events` capability. */
  MIGRATION_PASS: { pass: number };
  UNPLUG_PRIMARY: { 'device-id': string };
  FAILOVER_NEGOTIATED: { 'device-id': string };
  BLOCK_JOB_READY: BlockJobEventData;
  BLOCK_JOB_COMPLETED: BlockJobEventData & { error?: string };
  BLOCK_JOB_CANCELLED: BlockJobEventData;
  BLOCK_JOB_ERROR: { device: string; operation: 'read' | 'write'; action: 'ignore' | 'report' | 'stop' };
  BLOCK_JOB_PENDING: { type: JobType; id: string };
  JOB_STATUS_CHANGE: { id: string; status: JobStatus };
  BLOCK_IO_ERROR: {
    device: string;
    'node-name'?: string;
    operation: 'read' | 'write';
    action: 'ignore' | 'report' | 'stop';
    nospace?: boolean;
    reason: string;
  };
  BLOCK_EXPORT_DELETED: { id: string };
  /** The guest changed a NIC's receive filter (e.g. its MAC): time to re-announce. */
  NIC_RX_FILTER_CHANGED: { name?: string; path: string };
  NETDEV_STREAM_CONNECTED: { 'netdev-id': string; addr: SocketAddress };
  NETDEV_STREAM_DISCONNECTED: { 'netdev-id': string };
  DEVICE_DELETED: { device?: string; path: string };
  RTC_CHANGE: { offset: number; 'qom-path': string };
}

/** An event name from the map. */
export type QmpEventName = keyof QmpEvents;

/** When QEMU emitted the event (host clock). */
export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

/** A delivered event of a known name. */
export interface QmpEvent<E extends QmpEventName = QmpEventName> {
  event: E;
  data: QmpEvents[E];
  timestamp: QmpTimestamp;
}

/** The discriminated union of every known event: narrow it on `event`. */
export type QmpKnownEvent = { [E in QmpEventName]: QmpEvent<E> }[QmpEventName];

/** Any event as it came off the wire, including names the map does not know. */
export interface QmpRawEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: QmpTimestamp;
}

/** Every name of {@link QmpEvents}, at run time (the two are kept in step by the compiler). */
export const QMP_EVENT_NAMES = [
  'STOP', 'RESUME', 'SHUTDOWN', 'POWERDOWN', 'RESET', 'SUSPEND', 'WAKEUP', 'GUEST_PANICKED',
  'MIGRATION', 'MIGRATION_PASS', 'UNPLUG_PRIMARY', 'FAILOVER_NEGOTIATED', 'BLOCK_JOB_READY',
  'BLOCK_JOB_COMPLETED', 'BLOCK_JOB_CANCELLED', 'BLOCK_JOB_ERROR', 'BLOCK_JOB_PENDING',
  'JOB_STATUS_CHANGE', 'BLOCK_IO_ERROR', 'BLOCK_EXPORT_DELETED', 'NIC_RX_FILTER_CHANGED',
  'NETDEV_STREAM_CONNECTED', 'NETDEV_STREAM_DISCONNECTED', 'DEVICE_DELETED', 'RTC_CHANGE',
] as const satisfies readonly QmpEventName[];

// Fails to compile when a name is added to QmpEvents but not to QMP_EVENT_NAMES.
type MissingNames = Exclude<QmpEventName, (typeof QMP_EVENT_NAMES)[number]>;
const allNamesListed: [MissingNames] extends [never] ? true : MissingNames = true;
void allNamesListed;

const KNOWN = new Set<string>(QMP_EVENT_NAMES);

/** True when the raw event's name is in the typed map. */
export function isKnownEvent(ev: QmpRawEvent): ev is QmpRawEvent & QmpKnownEvent {
  return KNOWN.has(ev.event);
}
