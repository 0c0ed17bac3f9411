/**
 * `ferry lab …`: the local multi-host lab (CLI.md, "Lab"). Each command parses its options,
 * calls src/lab and prints JSON (--json) or a table.
 */
import type { Command } from 'commander';
import { FerryError } from '../../errors/index.js';
import {
  checkAccel, DEFAULT_LAB, healHost, isolateHost, killHost, labDown, labExec, labStatus, labUp, requireRoot,
  type LabStatus,
} from '../../lab/index.js';
import { printJson, printTable, run } from '../output.js';

interface NameOpts { name: string; json?: boolean }
interface UpOpts extends NameOpts { hosts?: string; bandwidth?: string; accel?: string; cluster?: boolean; leaseTtl?: string }

/** The JSON of `lab up` and `lab status`: CLI.md's fields, plus bandwidth and a few per host. */
function statusJson(s: LabStatus): unknown {
  return {
    name: s.name,
    hosts: s.hosts.map((h) => ({
      name: h.name, address: h.address, url: h.url, agentPid: h.agentPid, namespace: h.namespace,
      socket: h.socket, link: h.link, vmRange: h.vmRange,
    })),
    client: s.client,
    bandwidth: s.bandwidth,
    accel: s.accel,
    ...(s.etcd ? { etcd: s.etcd } : {}),
  };
}

function printStatus(s: LabStatus, json: boolean | undefined): void {
  if (json) {
    printJson(statusJson(s));
    return;
  }
  printTable(['host', 'address', 'agent pid', 'link', 'namespace', 'url'],
    s.hosts.map((h) => [h.name, h.address, h.agentPid ?? 'down', h.link, h.namespace, h.url]));
  process.stdout.write(`client ${s.client.address} in namespace ${s.client.namespace}; ` +
    `links ${s.bandwidth ?? 'unshaped'}; accel ${s.accel}; run commands there with \`ferry lab exec --name ${s.name} -- CMD\`.\n`);
  if (s.etcd) process.stdout.write(`etcd: ${s.etcd.map((e) => `${e.name} ${e.url} ${e.pid === null ? 'down' : `pid ${e.pid}`}`).join('; ')}; cluster "lab"\n`);
}

function parseHosts(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new FerryError('INVALID_INPUT', `The host count "${v}" is not a whole number.`);
  return Number(v);
}

const nameOption = (c: Command): Command => c.option('--name <name>', 'lab name', DEFAULT_LAB);

function registerUpAndStatus(lab: Command): void {
  nameOption(lab.command('up').description('build the lab (or bring it back to health) and make it the current context'))
    .option('--hosts <n>', 'number of hosts (default 2, or what the lab has)')
    .option('--bandwidth <rate>', 'shape each host link to RATE (e.g. 1gbit, 100mbit; none removes shaping)')
    .option('--accel <mode>', 'accelerator for the agents: auto, kvm or tcg')
    .option('--cluster', 'also run a 3-member etcd and join the hosts to the failover cluster "lab"')
    .option('--lease-ttl <s>', 'with --cluster, for a new cluster: host lease TTL in seconds (default 10)')
    .option('--json', 'print JSON')
    .action((o: UpOpts) => run(o.json, async () => {
      requireRoot();
      const hosts = parseHosts(o.hosts);
      const ttl = parseHosts(o.leaseTtl);
      const s = await labUp({
        name: o.name,
        ...(hosts === undefined ? {} : { hosts }),
        ...(o.bandwidth === undefined ? {} : { bandwidth: o.bandwidth }),
        ...(o.accel === undefined ? {} : { accel: checkAccel(o.accel) }),
        ...(o.cluster ? { cluster: true } : {}),
        ...(ttl === undefined ? {} : { clusterTiming: { leaseTtlSec: ttl } }),
      });
      printStatus(s, o.json);
    }));
  nameOption(lab.command('status').description('show the lab\'s hosts and agents'))
    .option('--json', 'print JSON')
    .action((o: NameOpts) => run(o.json, async () => {
      requireRoot();
      printStatus(await labStatus(o.name), o.json);
    }));
}

function registerFaults(lab: Command): void {
  const fault = (cmd: string, what: string, act: (lab: string, host: string) => Promise<string>): void => {
    nameOption(lab.command(`${cmd} <host>`).description(what))
      .option('--json', 'print JSON')
      .action((host: string, o: NameOpts) => run(o.json, async () => {
        requireRoot();
        const said = await act(o.name, host);
        if (o.json) printJson({ host, done: cmd, detail: said });
        else process.stdout.write(`${said}\n`);
      }));
  };
  fault('kill-host', 'power loss: kill every process of the host (agent and QEMUs)', async (l, h) => {
    const pids = await killHost(l, h);
    return `Killed ${pids.length} process${pids.length === 1 ? '' : 'es'} of ${h}${pids.length ? ` (${pids.join(', ')})` : ''}.`;
  });
  fault('isolate', 'cut the host\'s network link', async (l, h) => {
    await isolateHost(l, h);
    return `Host ${h} is cut off the lab network.`;
  });
  fault('heal', 'restore the host\'s network link', async (l, h) => {
    await healHost(l, h);
    return `Host ${h} is back on the lab network.`;
  });
}

/** Registers `ferry lab up|status|exec|kill-host|isolate|heal|down`. */
export function registerLab(program: Command): void {
  // Lets `exec` pass the command's own options through untouched.
  const lab = program.command('lab').description('local multi-host lab in network namespaces (needs root)')
    .enablePositionalOptions();
  registerUpAndStatus(lab);
  nameOption(lab.command('exec').description('run a command in the lab\'s client namespace: ferry lab exec -- CMD ARGS…'))
    .argument('<command...>', 'the command and its arguments')
    .passThroughOptions()
    .action((argv: string[], o: NameOpts) => run(false, async () => {
      requireRoot();
      process.exitCode = await labExec(o.name, argv);
    }));
  registerFaults(lab);
  nameOption(lab.command('down').description('remove everything `lab up` made, and nothing else'))
    .option('--json', 'print JSON')
    .action((o: NameOpts) => run(o.json, async () => {
      requireRoot();
      const r = await labDown(o.name);
      if (o.json) printJson(r);
      else if (r.namespaces.length === 0 && !r.dir) process.stdout.write(`There was no lab ${o.name}.\n`);
      else process.stdout.write(`Lab ${o.name} is down (removed ${r.namespaces.join(', ') || 'no namespaces'}).\n`);
    }));
}
