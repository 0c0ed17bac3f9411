/**
 * QAPI types shared by several QMP commands, transcribed from QEMU 7.2's schema
 * (`query-qmp-schema` on qemu-system-x86_64 7.2). Key names are QEMU's own, dashes and
 * all, so a value can go on the wire unchanged. QAPI `int`/`size` values are JSON numbers;
 * the ones Ferry reads (byte counts, times) stay far below 2^53.
 */

/** An empty QAPI struct: the `return` of commands that only acknowledge, or event data. */
export type QmpEmpty = Record<string, never>;

/** QAPI `OnOffAuto`. */
export type OnOffAuto = 'auto' | 'on' | 'off';

/** QAPI `InetSocketAddress`: host and port are strings, as QEMU resolves them itself. */
export interface InetSocketAddress {
  host: string;
  port: string;
  numeric?: boolean;
  /** Try ports from `port` up to this one. */
  to?: number;
  ipv4?: boolean;
  ipv6?: boolean;
  'keep-alive'?: boolean;
  mptcp?: boolean;
}

/** QAPI `UnixSocketAddress`. */
export interface UnixSocketAddress {
  path: string;
  abstract?: boolean;
  tight?: boolean;
}

/** QAPI `VsockSocketAddress`. */
export interface VsockSocketAddress {
  cid: string;
  port: string;
}

/** QAPI `String`: a file descriptor name passed earlier with `getfd`, and similar wrappers. */
export interface QapiString {
  str: string;
}

/**
 * QAPI `SocketAddress`: a flat union, the members sit beside `type`. Used by blockdev-add
 * (nbd `server`), query-migrate (`socket-address`) and most newer commands.
 */
export type SocketAddress =
  | ({ type: 'inet' } & InetSocketAddress)
  | ({ type: 'unix' } & UnixSocketAddress)
  | ({ type: 'vsock' } & VsockSocketAddress)
  | ({ type: 'fd' } & QapiString);

/**
 * QAPI `SocketAddressLegacy`: the older "simple union" form whose members are wrapped in
 * `data`. nbd-server-start still takes this form in 7.2, unlike blockdev-add's nbd driver.
 */
export type SocketAddressLegacy =
  | { type: 'inet'; data: InetSocketAddress }
  | { type: 'unix'; data: UnixSocketAddress }
  | { type: 'vsock'; data: VsockSocketAddress }
  | { type: 'fd'; data: QapiString };

/** QAPI `StrOrNull`: `null` resets a string parameter to its default. */
export type StrOrNull = string | null;
