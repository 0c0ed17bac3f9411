/**
 * Block layer types from QEMU 7.2's QAPI schema (qapi/block-core.json, block-export.json,
 * job.json), checked against `query-qmp-schema`. Only the blockdev drivers Ferry uses are
 * spelled out; the others are accepted loosely.
 */
import type { OnOffAuto, SocketAddress, SocketAddressLegacy } from './qapi-common.js';

/** QAPI `BlockdevDetectZeroesOptions`. */
export type BlockdevDetectZeroes = 'off' | 'on' | 'unmap';

/** QAPI `BlockDeviceIoStatus`. */
export type BlockDeviceIoStatus = 'ok' | 'failed' | 'nospace';

/** QAPI `ImageInfo` (recursive through `backing-image`). */
export interface ImageInfo {
  filename: string;
  format: string;
  'dirty-flag'?: boolean;
  'actual-size'?: number;
  'virtual-size': number;
  'cluster-size'?: number;
  encrypted?: boolean;
  compressed?: boolean;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  snapshots?: SnapshotInfo[];
  'backing-image'?: ImageInfo;
  /** Format-specific details (qcow2, vmdk, luks, rbd); kept loose. */
  'format-specific'?: { type: 'qcow2' | 'vmdk' | 'luks' | 'rbd'; data: Record<string, unknown> };
}

/** QAPI `SnapshotInfo`. */
export interface SnapshotInfo {
  id: string;
  name: string;
  'vm-state-size': number;
  'date-sec': number;
  'date-nsec': number;
  'vm-clock-sec': number;
  'vm-clock-nsec': number;
  icount?: number;
}

/** QAPI `BlockDirtyInfo`. */
export interface BlockDirtyInfo {
  name?: string;
  count: number;
  granularity: number;
  recording: boolean;
  busy: boolean;
  persistent: boolean;
  inconsistent?: boolean;
}

/** QAPI `BlockDeviceInfo`: one node, as query-named-block-nodes and query-block report it. */
export interface BlockDeviceInfo {
  file: string;
  'node-name'?: string;
  ro: boolean;
  drv: string;
  backing_file?: string;
  backing_file_depth: number;
  encrypted: boolean;
  detect_zeroes: BlockdevDetectZeroes;
  bps: number;
  bps_rd: number;
  bps_wr: number;
  iops: number;
  iops_rd: number;
  iops_wr: number;
  image: ImageInfo;
  bps_max?: number;
  bps_rd_max?: number;
  bps_wr_max?: number;
  iops_max?: number;
  iops_rd_max?: number;
  iops_wr_max?: number;
  bps_max_length?: number;
  bps_rd_max_length?: number;
  bps_wr_max_length?: number;
  iops_max_length?: number;
  iops_rd_max_length?: number;
  iops_wr_max_length?: number;
  iops_size?: number;
  group?: string;
  cache: { writeback: boolean; direct: boolean; 'no-flush': boolean };
  write_threshold: number;
  'dirty-bitmaps'?: BlockDirtyInfo[];
}

/** QAPI `BlockInfo`: one entry of query-block (a drive as the guest sees it). */
export interface BlockInfo {
  device: string;
  qdev?: string;
  type: string;
  removable: boolean;
  locked: boolean;
  inserted?: BlockDeviceInfo;
  tray_open?: boolean;
  'io-status'?: BlockDeviceIoStatus;
}

/** Members every blockdev-add takes (QAPI `BlockdevOptions` base). */
export interface BlockdevOptionsBase {
  'node-name'?: string;
  discard?: 'ignore' | 'unmap';
  cache?: { direct?: boolean; 'no-flush'?: boolean };
  'read-only'?: boolean;
  'auto-read-only'?: boolean;
  'force-share'?: boolean;
  'detect-zeroes'?: BlockdevDetectZeroes;
}

/** QAPI `BlockdevRef`: inline options or the node name of an existing node. */
export type BlockdevRef = BlockdevOptions | string;

/** Drivers Ferry configures, typed in full. */
export type BlockdevOptionsTyped =
  | (BlockdevOptionsBase & {
      driver: 'file' | 'host_device' | 'host_cdrom';
      filename: string;
      'pr-manager'?: string;
      locking?: OnOffAuto;
      aio?: 'threads' | 'native' | 'io_uring';
      'aio-max-batch'?: number;
      'drop-cache'?: boolean;
    })
  | (BlockdevOptionsBase & { driver: 'raw'; file: BlockdevRef; offset?: number; size?: number })
  | (BlockdevOptionsBase & {
      driver: 'qcow2';
      file: BlockdevRef;
      /** `null` opens the image without its backing file. */
      backing?: BlockdevRef | null;
      'lazy-refcounts'?: boolean;
      'pass-discard-request'?: boolean;
      'pass-discard-snapshot'?: boolean;
      'pass-discard-other'?: boolean;
      'overlap-check'?: 'none' | 'constant' | 'cached' | 'all' | Record<string, unknown>;
      'cache-size'?: number;
      'l2-cache-size'?: number;
      'l2-cache-entry-size'?: number;
      'refcount-cache-size'?: number;
      'cache-clean-interval'?: number;
      'data-file'?: BlockdevRef;
    })
  | (BlockdevOptionsBase & {
      driver: 'nbd';
      server: SocketAddress;
      export?: string;
      'tls-creds'?: string;
      'tls-hostname'?: string;
      'x-dirty-bitmap'?: string;
      /** Seconds to keep retrying a lost connection before failing requests. */
      'reconnect-delay'?: number;
      'open-timeout'?: number;
    })
  | (BlockdevOptionsBase & {
      driver: 'null-co' | 'null-aio';
      size?: number;
      'latency-ns'?: number;
      'read-zeroes'?: boolean;
    });

/** Every other QAPI `BlockdevDriver` of QEMU 7.2, accepted without checking its members. */
export type BlockdevDriverUntyped =
  | 'blkdebug' | 'blklogwrites' | 'blkreplay' | 'blkverify' | 'bochs' | 'cloop' | 'compress'
  | 'copy-before-write' | 'copy-on-read' | 'dmg' | 'snapshot-access' | 'ftp' | 'ftps' | 'gluster'
  | 'http' | 'https' | 'iscsi' | 'luks' | 'nfs' | 'nvme' | 'parallels' | 'preallocate' | 'qcow'
  | 'qed' | 'quorum' | 'rbd' | 'replication' | 'ssh' | 'throttle' | 'vdi' | 'vhdx' | 'vmdk'
  | 'vpc' | 'vvfat';

/** QAPI `BlockdevOptions`, the argument of blockdev-add. */
export type BlockdevOptions =
  | BlockdevOptionsTyped
  | (BlockdevOptionsBase & { driver: BlockdevDriverUntyped; [member: string]: unknown });

/** QAPI `BlockdevOnError`. */
export type BlockdevOnError = 'report' | 'ignore' | 'enospc' | 'stop' | 'auto';

/** QAPI `MirrorSyncMode`. */
export type MirrorSyncMode = 'top' | 'full' | 'none' | 'incremental' | 'bitmap';

/** Arguments of blockdev-mirror (QAPI command `blockdev-mirror`). */
export interface BlockdevMirrorArgs {
  /** The job's id; defaults to `device`. */
  'job-id'?: string;
  /** Node name (or device) to copy from. */
  device: string;
  /** Node name of the already-added target. */
  target: string;
  replaces?: string;
  sync: MirrorSyncMode;
  /** Bytes per second; 0 is unlimited. */
  speed?: number;
  granularity?: number;
  'buf-size'?: number;
  'on-source-error'?: BlockdevOnError;
  'on-target-error'?: BlockdevOnError;
  'filter-node-name'?: string;
  /** `write-blocking` makes guest writes wait for the target: the mirror then converges. */
  'copy-mode'?: 'background' | 'write-blocking';
  'auto-finalize'?: boolean;
  'auto-dismiss'?: boolean;
}

/** QAPI `JobStatus`. */
export type JobStatus =
  | 'undefined' | 'created' | 'running' | 'paused' | 'ready' | 'standby' | 'waiting'
  | 'pending' | 'aborting' | 'concluded' | 'null';

/** QAPI `JobType`. */
export type JobType =
  | 'commit' | 'stream' | 'mirror' | 'backup' | 'create' | 'amend' | 'snapshot-load'
  | 'snapshot-save' | 'snapshot-delete';

/** QAPI `BlockJobInfo`, one entry of query-block-jobs. `device` is the job id. */
export interface BlockJobInfo {
  type: string;
  device: string;
  len: number;
  offset: number;
  busy: boolean;
  paused: boolean;
  speed: number;
  'io-status': BlockDeviceIoStatus;
  ready: boolean;
  status: JobStatus;
  'auto-finalize': boolean;
  'auto-dismiss': boolean;
  error?: string;
}

/** QAPI `BlockDirtyBitmapOrStr`. */
export type BlockDirtyBitmapOrStr = string | { node: string; name: string };

interface BlockExportOptionsBase {
  id: string;
  'fixed-iothread'?: boolean;
  iothread?: string;
  'node-name': string;
  writable?: boolean;
  writethrough?: boolean;
}

/** QAPI `BlockExportOptions`, the argument of block-export-add. */
export type BlockExportOptions =
  | (BlockExportOptionsBase & {
      type: 'nbd';
      /** Export name clients ask for; defaults to `node-name`. */
      name?: string;
      description?: string;
      bitmaps?: BlockDirtyBitmapOrStr[];
      'allocation-depth'?: boolean;
    })
  | (BlockExportOptionsBase & { type: 'vhost-user-blk' | 'fuse' | 'vduse-blk'; [member: string]: unknown });

/** Arguments of nbd-server-start: note `addr` is the legacy, `data`-wrapped socket address. */
export interface NbdServerStartArgs {
  addr: SocketAddressLegacy;
  'tls-creds'?: string;
  'tls-authz'?: string;
  'max-connections'?: number;
}

/** QAPI `YankInstance`: what `yank` may cut off. */
export type YankInstance = { type: 'block-node'; 'node-name': string } | { type: 'chardev'; id: string } | { type: 'migration' };
