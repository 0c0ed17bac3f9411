/**
 * The one-time secret of a migration job (protocol.ts): the destination draws it in prepare and
 * returns it once, in the prepare reply; the source presents it with every later request about
 * the job. The destination keeps only its SHA-256, the source the secret itself (its recovery
 * after a restart must still present it). Like an API token (docs/security.md) it is 256 random
 * bits, so one SHA-256 is enough to make a copied database useless.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { FerryError } from '../errors/index.js';
import type { JobRecord } from './job.js';

/** A new secret: 32 random bytes in base64url (43 characters). */
export const newJobSecret = (): string => randomBytes(32).toString('base64url');

/** What the destination keeps of a secret: its SHA-256 in hex. */
export const hashJobSecret = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

/**
 * Throws JOB_SECRET_INVALID unless `presented` is the secret whose hash the destination kept for
 * `job`. Compared in constant time. A job recorded before secrets existed (no hash) is let through:
 * the agent that prepared it did not hand one out.
 */
export function checkJobSecret(job: JobRecord, keptHash: string | null, presented: string | undefined): void {
  if (keptHash === null) return;
  const ok = presented !== undefined && timingSafeEqual(Buffer.from(hashJobSecret(presented), 'hex'), Buffer.from(keptHash, 'hex'));
  if (!ok) {
    throw new FerryError('JOB_SECRET_INVALID', presented === undefined
      ? `The request about migration job ${job.id} carries no job secret; only the agent that prepared it on ${job.destination} may continue or end it.`
      : `The request about migration job ${job.id} carries the wrong job secret; only the agent that prepared it on ${job.destination} may continue or end it.`);
  }
}
