/**
 * The one catalogue of Ferry's error codes. A code is never reused for another meaning;
 * every entry is documented in docs/errors.md (a unit test keeps the two in step).
 */
export interface ErrorSpec {
  readonly httpStatus: number;
  readonly retryable: boolean;
  /** What the code means, for docs/errors.md. */
  readonly summary: string;
}

const spec = (httpStatus: number, summary: string, retryable = false): ErrorSpec => ({ httpStatus, retryable, summary });

export const CATALOGUE = {
  // Input
  INVALID_INPUT: spec(400, 'The request body or a parameter does not match its schema; in the CLI also a command line it cannot parse (an unknown command or option, a missing argument).'),
  PAYLOAD_TOO_LARGE: spec(413, 'The request body is larger than the API accepts.'),
  UNSUPPORTED_MEDIA_TYPE: spec(415, 'The request body is not JSON (send content-type: application/json).'),
  INVALID_NAME: spec(400, 'A VM or host name is not 1–63 characters of a-z, 0-9 and dashes, starting with a letter.'),
  INVALID_SIZE: spec(400, 'A memory or disk size is not a positive size such as 256M or 1G, or is outside the allowed range.'),
  INVALID_CPUS: spec(400, 'The vCPU count is not an integer from 1 to the host\'s CPU count.'),
  INVALID_CPU_MODEL: spec(400, 'The CPU model is not one QEMU on this host offers, or this host lacks features it needs.'),
  INVALID_PATH: spec(400, 'A path is not absolute, contains "..", or lies outside every storage pool.'),
  UNKNOWN_POOL: spec(404, 'No storage pool of that name exists on the host.'),
  // Resources
  VM_NOT_FOUND: spec(404, 'No VM of that name is known to the host.'),
  VM_EXISTS: spec(409, 'A VM of that name already exists.'),
  VM_BUSY: spec(409, 'The VM has a job running (a move, a start or a stop); try again when it ends.', true),
  VM_NOT_HA: spec(409, 'The VM is not an HA VM: it has no restart priority, restart or failback policy to change and no cluster record to register (those come with `vm create --ha`).'),
  VM_BAD_STATE: spec(409, 'The VM is not in a state that allows the action (for example starting a running VM).'),
  INSUFFICIENT_MEMORY: spec(409, 'The host does not have that much memory free for VMs.'),
  INSUFFICIENT_DISK: spec(507, 'The storage pool does not have room for the disk.'),
  STORAGE_NOT_SHARED: spec(409, 'A disk of the VM is on storage the destination does not share; move it with --include-storage.'),
  DISK_EXISTS: spec(409, 'A disk image already exists where a new VM, a move or a storage move would create one; Ferry never overwrites it.'),
  NO_FREE_IP: spec(409, 'Every address of the host\'s VM range is held by a VM (here, on a peer, or an HA VM of the cluster) or reserved for a VM that moved away.'),
  UNKNOWN_HOST: spec(404, 'No host of that name is in the current context or lab.'),
  // Lab and CLI context
  NO_CONTEXT: spec(400, 'The CLI has no context: run `ferry lab up` or set FERRY_URL.'),
  LAB_NOT_FOUND: spec(404, 'No lab of that name exists: run `ferry lab up`.'),
  LAB_FAILED: spec(500, 'Building or changing the lab failed; the sentence says which step.'),
  NOT_ROOT: spec(403, 'The command needs root (network namespaces, taps, bridges).'),
  // Agent, QEMU, QMP
  AGENT_UNREACHABLE: spec(503, 'The host agent (ferryd) did not answer: the one called, or another host it had to ask first (`vm start --register` asks every host whether it runs a VM of that name; one that answered an error instead, such as PEER_UNTRUSTED, is named with it and will not pass by waiting).', true),
  QEMU_START_FAILED: spec(500, 'QEMU exited or did not open its QMP socket while starting the VM (or a probe), or the folder it needs (the VM\'s run folder, a probe\'s temporary folder) cannot be made.'),
  QEMU_GONE: spec(500, 'The VM\'s QEMU process went away.'),
  QMP_ERROR: spec(500, 'QEMU answered a QMP command with an error.'),
  QMP_TIMEOUT: spec(504, 'QEMU did not answer a QMP command in time.', true),
  QMP_PROTOCOL: spec(500, 'QEMU\'s QMP socket sent something that is not QMP.'),
  QMP_CLOSED: spec(500, 'The QMP connection closed.'),
  ABORTED: spec(499, 'The operation was cancelled.'),
  STOP_TIMEOUT: spec(504, 'The VM did not stop in time.', true),
  IMAGE_BUILD_FAILED: spec(500, 'Building the test guest image failed; the sentence says which step.'),
  IMAGE_MISSING: spec(409, 'The test guest image is not built: run `ferry image build`.'),
  STORAGE_FAILED: spec(500, 'A qemu-img or file operation on a disk image failed, or a storage pool\'s file system cannot be read (its folder gone, a stale NFS handle).'),
  CONFIG_INVALID: spec(500, 'The agent configuration file is missing or invalid.'),
  NOT_FOUND: spec(404, 'No such route.'),
  STATE_STORE_FAILED: spec(500, 'The agent\'s state database (SQLite in its state folder) could not be written or read: its disk is full or read-only, or the file is damaged. The request may have stopped part-way (a VM started is stopped again when its start cannot be recorded); `ferry vm list` shows what exists.'),
  INTERNAL: spec(500, 'An unexpected internal error; the agent log has details.'),
  // Migration
  MIGRATION_NOT_FOUND: spec(404, 'No migration job with that id is known to the host.'),
  MIGRATION_FAILED: spec(500, 'The move failed; the sentence says in which phase and where the VM runs now.'),
  MIGRATION_TIMEOUT: spec(504, 'The move did not complete within its completion timeout and was aborted; the VM keeps running on the source.'),
  MIGRATION_CANCELLED: spec(409, 'The move was cancelled before switch-over (by an operator, or by a resume that stopped a drain; such a resume also answers the drain\'s further moves and stops with it); the VM keeps running on the source.'),
  SAME_HOST: spec(400, 'The destination is the host the VM already runs on.'),
  HOST_UNREACHABLE: spec(503, 'The peer host\'s agent did not answer a migration request.', true),
  JOB_BAD_PHASE: spec(409, 'The migration job is not in a phase that allows the step (for example cancelling after switch-over).'),
  PROTOCOL_VERSION: spec(400, 'The peer agent speaks a migration protocol version this agent does not.'),
  // Host identity and encryption (docs/security.md)
  PEER_UNTRUSTED: spec(403, 'A peer route was called without a certificate from the hosts\' CA, or with one that names no peer of this host.'),
  MIGRATION_INCOMING_FAILED: spec(500, 'The destination\'s QEMU failed the incoming migration stream (bytes that are not a migration stream, a stream for another VM, a broken connection) before the VM ran there; the destination cleaned up and the VM keeps running on the source.'),
  MIGRATION_FENCED: spec(409, 'A host of the move lost its cluster lease during the move, so the QEMU of the HA VM there was powered off (fencing), or the destination gave up its half because the source had lost its lease, or the source powered off its paused copy because the destination, which had run the VM, lost its lease after the switch-over; the move ended, and the cluster runs the VM where etcd says it belongs (docs/cluster.md, "A VM in the middle of a move").'),
  MIGRATION_LOST_ON_DESTINATION: spec(409, 'The destination ran the VM after the switch-over and lost it there (its host or QEMU went down, and its recovery ended the move); the source\'s copy, paused at the switch-over, is older than what ran there, so the source powered it off without running it and keeps the VM stopped with its disks: start it to boot from them (after a storage move the destination keeps its newer images and names them).'),
  JOB_SECRET_INVALID: spec(403, 'A peer message about a migration job did not carry the one-time secret the destination handed out in its prepare reply, or carried another; only the agent that prepared the job may continue or end it.'),
  TLS_UNAVAILABLE: spec(409, 'The move must be encrypted but a host of it has no certificate (no `tls` in its agent config); give it one, or allow insecure migration on both hosts.'),
  CA_EXISTS: spec(409, 'The folder already holds a CA; replacing it invalidates every host certificate (see docs/security.md, rotation).'),
  CA_NOT_FOUND: spec(404, 'The folder holds no CA key and certificate: run `ferry ca init`.'),
  CERT_FAILED: spec(500, 'Making a key or certificate with openssl, or writing it, failed; the sentence quotes openssl or names the file-system error (a folder that cannot be written).'),
  // Storage moves on one host
  SAME_PATH: spec(400, 'The target folder of a storage move is where the VM\'s disks already are.'),
  NO_MIGRATION_NETWORK: spec(409, 'The destination has migration networks set and the source has an address in none of them.'),
  MIGRATION_LIMIT: spec(409, 'The destination already runs as many live migrations as its maxMigrations allows; the move waits in its source\'s queue or is tried again.', true),
  STORAGE_MIGRATION_LIMIT: spec(409, 'The host already runs as many storage migrations as its maxStorageMigrations allows; try again when one ends.', true),
  // Compatibility report (ferry compare; every move runs it first)
  MIGRATION_DISABLED: spec(409, 'Live migration is turned off on the source (outgoing) or the destination (incoming) host.'),
  MACHINE_TYPE_UNSUPPORTED: spec(409, 'The destination\'s QEMU does not offer the VM\'s machine type (it is older than the source\'s).'),
  QEMU_TOO_OLD: spec(409, 'The destination\'s QEMU runs TCG and is older than 9.0, and the VM runs with its whole RAM: moving it there would lose guest writes.'),
  CPU_MODEL_UNSUPPORTED: spec(409, 'The destination does not know the VM\'s CPU model or cannot offer some of its features.'),
  CPU_FEATURES_MISSING: spec(409, 'The VM\'s CPU model enables features on the source that the same model lacks on the destination.'),
  INSUFFICIENT_CPUS: spec(409, 'The destination has fewer CPUs than the VM has vCPUs.'),
  BRIDGE_MISSING: spec(409, 'The network bridge VMs attach to does not exist on the destination.'),
  INCOMPATIBLE: spec(409, 'The move was refused before it started: the compatibility report found problems, listed in the sentence and in `details.incompatibilities`.'),
  // Users, roles, limits (docs/security.md)
  UNAUTHENTICATED: spec(401, 'The request has no bearer token, or its token is unknown or revoked: send `Authorization: Bearer TOKEN` (FERRY_TOKEN for the CLI).'),
  FORBIDDEN: spec(403, 'The token\'s role does not allow the action (viewer reads; operator runs VMs and moves; admin changes settings and tokens).'),
  TOO_MANY_REQUESTS: spec(429, 'The token already has as many requests in flight as the agent allows; try again when one ends.', true),
  TOKEN_NOT_FOUND: spec(404, 'No API token with that id is known to the host.'),
  // Cluster (ferry cluster, HA)
  CLUSTER_UNAVAILABLE: spec(503, 'etcd did not answer or has no quorum; the cluster places nothing until it does, and running VMs are left alone. Also answered by a member that cannot renew its cluster lease when asked to take or start an HA VM (an incoming move of one is refused in prepare, a user\'s start before anything starts).', true),
  CLUSTER_EXISTS: spec(409, 'A cluster of that name already exists in that etcd (join it), or the host is already in a cluster.'),
  CLUSTER_NOT_FOUND: spec(404, 'No cluster of that name exists in that etcd: create it first.'),
  NOT_IN_CLUSTER: spec(409, 'The host is not in a cluster: HA VMs and cluster status need `ferry cluster create` or `join` first; `ferry cluster leave` of a host that has left already, or never joined, answers this too.'),
  MEMBER_ALIVE: spec(409, 'The host to take out of the cluster still holds its lease (its agent runs), so another member cannot remove it: ask that host itself, or stop its agent and try again once its lease has expired.'),
  CLUSTER_LAST_MEMBER: spec(409, 'The host is the only live member of its cluster: leaving would leave nobody to run the cluster\'s HA VMs or manage it.'),
  HOST_NOT_EMPTY: spec(409, 'The host still runs VMs, or owns HA VMs of the cluster (listed in the sentence), so it cannot leave the cluster: drain it first, then delete or move what is left.'),
  HOST_NOT_DRAINED: spec(409, 'The host is not drained (`ferry host drain` first), so it cannot leave the cluster by itself: only a drained host refuses new VMs, starts and incoming moves while it leaves.'),
  CLUSTER_RECORDS_CHANGING: spec(409, 'The cluster\'s records of the host kept changing while `ferry cluster leave` wrote them (other agents wrote in between, at each try); try again: a new try plans only what is left to write.', true),
  HA_NEEDS_SHARED_STORAGE: spec(409, 'An HA VM must keep its disks in a shared pool, so that another host can restart it from the same image.'),
  // Host drain and maintenance (ferry host drain / resume)
  HOST_IN_MAINTENANCE: spec(409, 'The host is draining or drained for maintenance: it takes no new VMs, starts none and accepts no incoming moves until `ferry host resume`.'),
  NO_DRAIN_TARGET: spec(409, 'No other host can take the VM during a drain: none is known, or each has a different problem (listed in the sentence).'),
  DRAIN_INCOMPLETE: spec(409, 'The drain left VMs running on the host that could not move (each listed with its reason); the host stays draining. Fix them and drain again, or drain with --force to stop them.'),
  DRAIN_IN_PROGRESS: spec(409, 'A drain or resume of the host is already running; wait for it to end.', true),
  FAILBACK_INCOMPLETE: spec(409, 'The host left maintenance but some VMs did not come back (each listed with its reason).'),
  NOT_CLUSTER_MANAGER: spec(403, 'A host that does not manage the cluster (as etcd says now) asked for a step of a cluster drain; only the elected manager runs drains.'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof CATALOGUE;
