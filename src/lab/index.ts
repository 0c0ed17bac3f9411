/**
 * The local multi-host lab: N hosts, a switch and a client in network namespaces, one ferryd
 * per host. `ferry lab …` and the integration tests use only what this file exports.
 */
export {
  labUp, labStatus, labDown, labExec, killHost, isolateHost, healHost, findHost, requireRoot,
  type LabUpOptions, type LabStatus, type LabHostStatus, type LabDownResult,
} from './lab.js';
export { withLab, startLab, stopLab, dumpLabLogs, type LabFixtureOptions } from './fixture.js';
export {
  nsName, switchNsName, clientNsName, hostName, hostIndex, isLabNamespace, labPlan, hostPlan, agentConfig,
  vmMemoryMiB, checkLabName, checkHostCount, checkAccel, planNamespaces,
  DEFAULT_LAB, DEFAULT_HOSTS, MAX_HOSTS, AGENT_PORT, CLIENT_ADDRESS, LAB_PREFIX_LENGTH, BRIDGE, UPLINK, MIGRATION_UPLINK,
  type Accel, type HostPlan, type LabPlan, type AgentConfigInputs,
} from './plan.js';
export { parseRate, tbfBurstBytes, type Rate } from './rate.js';
export { probeAgent, agentPid } from './agents.js';
export { readRecord, type LabRecord } from './record.js';
export { startProbe, STALL_THRESHOLD_MS, type Probe, type ProbeResult, type Stall } from './probe.js';
export { etcdMembers, etcdPid, LAB_CLUSTER, type EtcdMember } from './etcd.js';
