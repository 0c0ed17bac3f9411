import { FerryError } from '../errors/index.js';
import type { JobRecord } from './job.js';

/**
 * Why a move ends when this host powered off its QEMU of the VM because its cluster lease lapsed
 * (fencing, by the agent or by its watchdog: docs/cluster.md, "A VM in the middle of a move").
 */
export function fencedError(host: string, job: Pick<JobRecord, 'vm' | 'role' | 'source' | 'destination'>): FerryError {
  return new FerryError('MIGRATION_FENCED', job.role === 'source'
    ? `Host ${host} lost its cluster lease during the move of "${job.vm}" to ${job.destination} and powered the VM off (fencing); the cluster restarts it where etcd says it belongs.`
    : `Host ${host} lost its cluster lease during the move of "${job.vm}" from ${job.source} and powered off its incoming QEMU (fencing); ${job.source} keeps the VM.`);
}
