/**
 * `labDir(NAME)/lab.json`: what `lab up` made, so that `status` can report it and `down`
 * removes exactly that. Written before anything is built, so a build that fails halfway
 * still leaves a record to clean up by.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { contextFile, labDir } from '../util/paths.js';
import { writeContext, type Context } from '../util/context.js';
import { writeJsonAtomic } from '../util/files.js';
import type { Accel, LabPlan } from './plan.js';

/** The contents of lab.json (version 1). */
export interface LabRecord {
  version: 1;
  name: string;
  hosts: number;
  /** The rate every host link is shaped to (tc notation), or null for unshaped links. */
  bandwidth: string | null;
  accel: Accel;
  /** True when the lab runs etcd and its hosts form the cluster `lab` (`lab up --cluster`). */
  cluster?: boolean;
  /** Every namespace the lab consists of. */
  namespaces: string[];
  createdAt: string;
  updatedAt: string;
}

export const recordPath = (name: string): string => join(labDir(name), 'lab.json');

/** The record of lab `name`, or undefined when there is none (or it is unreadable). */
export function readRecord(name: string): LabRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(recordPath(name), 'utf8')) as Partial<LabRecord>;
    return r.version === 1 && r.name === name && typeof r.hosts === 'number' ? r as LabRecord : undefined;
  } catch {
    return undefined;
  }
}

/** The record of lab `name`; throws LAB_NOT_FOUND when there is none. */
export function requireRecord(name: string): LabRecord {
  const r = readRecord(name);
  if (!r) throw new FerryError('LAB_NOT_FOUND', `No lab named ${name} exists: run \`ferry lab up --name ${name}\`.`);
  return r;
}

/** Writes lab.json atomically. */
export function writeRecord(r: LabRecord): void {
  const f = recordPath(r.name);
  mkdirSync(labDir(r.name), { recursive: true });
  writeJsonAtomic(f, r, { pretty: true });
}

/** The context name of lab `name`. */
export const contextName = (name: string): string => `lab:${name}`;

/** Makes lab `p` the CLI's current context; the CLI reaches each agent over its unix socket (or HTTPS, trusting the lab's CA). */
export function useLabContext(p: LabPlan): void {
  writeContext({
    name: contextName(p.name),
    lab: p.name,
    hosts: p.hosts.map((h) => ({ name: h.name, url: h.url, socket: h.socketPath })),
    ca: join(p.caDir, 'ca-cert.pem'),
  });
}

/** Removes the current context if it points at lab `name` (and leaves any other alone). */
export function dropLabContext(name: string): boolean {
  // Read the file itself: readContext() would answer FERRY_URL's context instead.
  let ctx: Partial<Context> | undefined;
  try {
    ctx = JSON.parse(readFileSync(contextFile(), 'utf8')) as Partial<Context>;
  } catch {
    return false;
  }
  if (ctx.lab !== name) return false;
  rmSync(contextFile(), { force: true });
  return true;
}
