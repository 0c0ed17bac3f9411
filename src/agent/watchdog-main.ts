#!/usr/bin/env node
/**
 * The fencing watchdog (watchdog.ts explains why and how). Usage: watchdog-main --state DIR.
 * Started by ferryd when the host holds HA VMs; one per state folder; ends when the folder does.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { signalQemu } from '../qemu/process.js';
import { writeJsonAtomic } from '../util/files.js';
import { ArmTimer, claimPidFile, readArm, watchdogFiles, type WatchdogFired } from './watchdog.js';

const POLL_MS = 200;
const { values } = parseArgs({ options: { state: { type: 'string' } } });
const dir = values.state;
if (!dir) { process.stderr.write('usage: watchdog-main --state DIR\n'); process.exit(2); }
const files = watchdogFiles(dir);
const log = pino({ base: { watchdog: dir } });
if (!claimPidFile(dir)) process.exit(0);
log.info({ pid: process.pid }, 'fencing watchdog watching');

const timer = new ArmTimer();
setInterval(() => {
  if (!existsSync(dir)) { log.info('the state folder is gone; the watchdog ends'); process.exit(0); }
  const arm = readArm(files.arm);
  if (!timer.due(arm, performance.now(), Date.now())) return;
  const killed = arm.vms.filter((vm) => signalQemu(vm.pid, vm.uuid, 'SIGKILL')).map((vm) => vm.name);
  log.warn({ killed, listed: arm.vms.map((v) => v.name), agentPid: arm.agentPid },
    'fencing: ferryd did not renew the cluster lease in time (down or hung); powered off its HA VMs before the other hosts may start them');
  try {
    const record: WatchdogFired = { ...arm, killed, firedAt: Date.now() };
    writeJsonAtomic(files.fired, record);
  } catch (err) {
    log.error({ err }, 'could not write what the watchdog did');
  }
}, POLL_MS);
