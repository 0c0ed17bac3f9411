/**
 * Runs the compatibility report (compare.ts) on real hosts: the source gathers its facts, asks the
 * destination for its verdict over peer RPC (`POST /v1/peer/compare`), and joins the two. Every
 * move runs it before it records a job ({@link assertCompatible}); prepare's own checks stay as
 * the last line of defence for what changes in between.
 */
import { FerryError } from '../errors/index.js';
import type { MoveOptions } from './job.js';
import type { MigrationHost } from './host.js';
import { compare, reportLines, type Incompatibility } from './compare.js';
import { peerClient } from './peer-client.js';
import { PROTOCOL_VERSION, type CompareReply, type CompareRequest } from './protocol.js';
import { assessStorage, diskFactsOf } from './storage.js';

/** A report request: this host's VM, the destination, the move's options. */
export interface CompareQuery { vm: string; destination: string; options: MoveOptions }

/** The report as the API and `ferry compare --json` show it. */
export interface CompareReport { compatible: boolean; incompatibilities: Incompatibility[] }

/**
 * Source side: every reason a move of `q.vm` to `q.destination` would fail. Throws (not reports)
 * what makes the question itself wrong: VM_NOT_FOUND, SAME_HOST, UNKNOWN_HOST, HOST_UNREACHABLE.
 */
export async function compareMove(h: MigrationHost, q: CompareQuery): Promise<CompareReport> {
  const vm = h.inv.get(q.vm).spec;
  if (q.destination === h.name) {
    throw new FerryError('SAME_HOST', `The VM "${q.vm}" already runs on ${h.name}; choose another destination.`);
  }
  const peer = peerClient(h, q.destination);
  const [mine, disks] = await Promise.all([h.hostFacts(vm.cpuModel), diskFactsOf(h.pools, vm)]);
  const reply = await peer.compare({
    vm, source: h.name, destination: q.destination, options: q.options,
    ...(disks.length > 0 ? { disks } : {}), ...(mine.cpuFeatures ? { cpuFeatures: mine.cpuFeatures } : {}),
  });
  const incompatibilities = [
    ...compare({ vm, source: { host: h.name, outgoingEnabled: h.settings().outgoingEnabled } }),
    ...reply.incompatibilities,
  ];
  return { compatible: incompatibilities.length === 0, incompatibilities };
}

/** Throws INCOMPATIBLE, with the report's lines in the sentence and the list in `details`, unless the move would work. */
export async function assertCompatible(h: MigrationHost, q: CompareQuery): Promise<void> {
  const r = await compareMove(h, q);
  if (r.compatible) return;
  throw new FerryError('INCOMPATIBLE', `The VM "${q.vm}" cannot move to ${q.destination}: ${reportLines(r.incompatibilities).join('; ')}.`,
    { details: { incompatibilities: r.incompatibilities } });
}

/** Destination side of `POST /v1/peer/compare`: this host's problems with taking the VM. Makes nothing. */
export async function answerCompare(h: MigrationHost, req: CompareRequest): Promise<CompareReply> {
  if (req.destination !== h.name) {
    throw new FerryError('INVALID_INPUT', `This is host ${h.name}, not ${req.destination}; the comparison was sent to the wrong agent.`);
  }
  h.peerUrl(req.source);
  const facts = await h.hostFacts(req.vm.cpuModel);
  const storage = assessStorage(h.pools, req.vm, req.options, req.disks).problems.map((e) => ({ code: e.code, message: e.message }));
  const incompatibilities = compare({
    vm: req.vm, ...(req.cpuFeatures ? { sourceCpuFeatures: req.cpuFeatures } : {}),
    destination: { ...facts, host: h.name, incomingEnabled: h.settings().incomingEnabled, maintenance: h.inMaintenance?.() ?? null, vmExists: h.inv.find(req.vm.name) !== undefined && h.jobs.unclaimed(req.vm.name, req.source).length === 0, storage },
  });
  return { protocol: PROTOCOL_VERSION, host: h.name, incompatibilities };
}
