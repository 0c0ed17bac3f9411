/**
 * Ferry's QMP client: a typed command map over QEMU's QMP socket, with caller-supplied
 * timeouts and AbortSignals, typed events, and FakeQmp for unit tests. Depend on the
 * {@link Qmp} interface; create real sessions with {@link QmpClient.connect}.
 */
export { QmpClient, type ConnectOptions } from './client.js';
export { FakeQmp, type FakeCall, type FakeHandler, type FakeQmpOptions } from './fake.js';
export {
  DEFAULT_COMMAND_TIMEOUT_MS, type ExecuteOptions, type Qmp, type QmpEventPredicate, type WaitOptions,
} from './qmp.js';
export { QmpError, isQmpError, type QmpErrorBody, type QmpErrorClass } from './errors.js';
export type { QmpAnyEventListener, QmpCloseListener, QmpEventListener, QmpEventOf } from './event-hub.js';
export {
  QMP_EVENT_NAMES, isKnownEvent,
  type BlockJobEventData, type QmpEvent, type QmpEventName, type QmpEvents, type QmpKnownEvent,
  type QmpRawEvent, type QmpTimestamp, type ShutdownCause,
} from './events.js';
export type { QmpArgs, QmpCommandName, QmpCommands, QmpReturn } from './commands.js';
export type * from './qapi-common.js';
export type * from './qapi-migration.js';
export type * from './qapi-block.js';
export type * from './qapi-machine.js';
