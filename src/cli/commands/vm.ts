import type { Command } from 'commander';
import { FerryError } from '../../errors/index.js';
import { checkNoCopyElsewhere } from '../../cluster/model.js';
import { formatBytes, parseMemoryMiB, parseSize } from '../../util/index.js';
import type { VmView } from '../../agent/views.js';
import { api, everyHost, hostOf } from '../client.js';
import { printJson, printTable, run, warnUnreachable } from '../output.js';

type HostAnswers = Awaited<ReturnType<typeof everyHost<VmView[]>>>;

/** Finds the host that has the VM (asks every host of the context; `answers` is what they said). */
export async function locateVm(name: string): Promise<{ host: ReturnType<typeof hostOf>; vm: VmView; answers: HostAnswers }> {
  const answers = await everyHost<VmView[]>('/v1/vms');
  for (const a of answers) {
    // The destination's copy of a VM being moved is not where the VM lives yet.
    const vm = a.result.find((v) => v.name === name && !v.incoming);
    if (vm) return { host: a.host, vm, answers };
  }
  const extra = answers.unreachable?.length ? ` (hosts not answering: ${answers.unreachable.join(', ')})` : '';
  throw new FerryError('VM_NOT_FOUND', `No VM named "${name}" is on any host of the context${extra}.`);
}

/**
 * Before `vm start NAME --register`: the VM's host asks every other member of its cluster that none
 * runs a VM of that name (owner.ts); the CLI asks every host of its context too (`answers`, from
 * locateVm), which also covers a host that is not a member now.
 */
function checkRegister(name: string, host: string, answers: HostAnswers): void {
  checkNoCopyElsewhere(name, host, [...answers.map((a) => ({ host: a.host.name, vms: a.result })), ...(answers.unreachable ?? []).map((h) => ({ host: h, vms: null }))]);
}

/** `POST /v1/vms/:name/move-storage`'s answer (and `vm move-storage --json`). */
interface MoveStorageJson {
  vm: VmView; live: boolean; totalMs: number;
  disks: { index: number; from: string; to: string; pool: string; sizeBytes: number; allocatedBytes: number }[];
}

const vmRow = (v: VmView): (string | number | null)[] =>
  [v.name, v.host, v.state, v.ip, `${v.memoryMiB} MiB`, v.cpus, v.pid, v.disks.map((d) => formatBytes(d.sizeBytes)).join(', ') || null];
const HEAD = ['NAME', 'HOST', 'STATE', 'IP', 'MEMORY', 'CPUS', 'PID', 'DISKS'];

/** `ferry vm …`: create, start, stop, set, move-storage, delete, list, show. */
export function registerVm(program: Command): void {
  const vm = program.command('vm').description('virtual machines');

  vm.command('create <name>').description('create and start a VM')
    .requiredOption('--host <host>', 'host to create it on')
    .requiredOption('--memory <size>', 'memory, e.g. 256M or 1G (a bare number is MiB)')
    .option('--cpus <n>', 'vCPUs', '1')
    .option('--cpu-model <model>', 'named CPU model (a baseline lets the VM move between hosts)')
    .option('--disk <size>', 'add a disk of that size, e.g. 1G')
    .option('--pool <pool>', 'storage pool for the disk', 'default')
    .option('--ha', 'restart on another host when its host fails (cluster mode)')
    .option('--group <name>', 'anti-affinity group: a drain keeps VMs of one group on different hosts when it can')
    .option('--priority <n>', 'with --ha: restart order after a host failure, higher first (default 0)')
    .option('--restart <policy>', 'with --ha: always (default) or never')
    .option('--failback <policy>', 'with --ha: none (default) or immediate (move back live when its home host returns)')
    .option('--json', 'print JSON')
    .action((name: string, o: { host: string; memory: string; cpus: string; cpuModel?: string; disk?: string; pool: string; ha?: boolean; group?: string; priority?: string; restart?: string; failback?: string; json?: boolean }) =>
      run(o.json, async () => {
        const host = hostOf(o.host);
        const memoryMiB = parseMemoryMiB(o.memory);
        const cpus = Number(o.cpus);
        if (!Number.isInteger(cpus)) throw new FerryError('INVALID_CPUS', `The vCPU count "${o.cpus}" is not a whole number.`);
        const body = {
          name, memoryMiB, cpus, ...(o.cpuModel ? { cpuModel: o.cpuModel } : {}),
          ...(o.disk ? { diskSizeBytes: parseSize(o.disk), diskPool: o.pool } : {}), ...(o.ha ? { ha: true } : {}), ...(o.group ? { group: o.group } : {}),
          ...(o.priority !== undefined ? { haPriority: Number(o.priority) } : {}), ...(o.restart ? { haRestart: o.restart } : {}), ...(o.failback ? { haFailback: o.failback } : {}),
        };
        const v = await api<VmView>(host, 'POST', '/v1/vms', body);
        if (o.json) printJson(v);
        else printTable(HEAD, [vmRow(v)]);
      }));

  for (const [verb, desc] of [['start', 'start a stopped VM'], ['stop', 'stop a VM (ACPI, then hard after a timeout)']] as const) {
    const c = vm.command(`${verb} <name>`).description(desc).option('--json', 'print JSON');
    if (verb === 'stop') c.option('--force', 'hard stop at once').option('--timeout <sec>', 'seconds to wait for the guest');
    else c.option('--register', 'an HA VM the cluster has no record of (etcd\'s data lost): register it again here, then start it');
    c.action((name: string, o: { json?: boolean; force?: boolean; timeout?: string; register?: boolean }) => run(o.json, async () => {
      const { host, answers } = await locateVm(name);
      if (o.register) checkRegister(name, host.name, answers);
      const body = verb === 'stop' ? { ...(o.force ? { force: true } : {}), ...(o.timeout ? { timeoutSec: Number(o.timeout) } : {}) } : o.register ? { register: true } : undefined;
      const v = await api<VmView>(host, 'POST', `/v1/vms/${name}/${verb}`, body);
      if (o.json) printJson(v);
      else printTable(HEAD, [vmRow(v)]);
    }));
  }

  vm.command('move-storage <name>').description('move a VM\'s disks to another folder of its host\'s pools, live while it runs')
    .requiredOption('--to-path <dir>', 'absolute folder inside one of the host\'s pools; disks become DIR/<name>-disk<i>.qcow2')
    .option('--json', 'print JSON')
    .action((name: string, o: { toPath: string; json?: boolean }) => run(o.json, async () => {
      const { host } = await locateVm(name);
      const r = await api<MoveStorageJson>(host, 'POST', `/v1/vms/${name}/move-storage`, { toPath: o.toPath });
      if (o.json) { printJson(r); return; }
      const disks = r.disks.map((d) => `${d.from} → ${d.to} (${formatBytes(d.allocatedBytes)} of ${formatBytes(d.sizeBytes)})`);
      process.stdout.write(`moved the disks of ${name} ${r.live ? 'live' : 'while stopped'} in ${(r.totalMs / 1000).toFixed(1)} s: ${disks.join(', ')}\n`);
    }));

  vm.command('set <name>').description('change a VM\'s anti-affinity group and, for an HA VM, its restart priority, restart and failback policies')
    .option('--group <name>', 'anti-affinity group: a drain keeps VMs of one group on different hosts when it can')
    .option('--no-group', 'take the VM out of its anti-affinity group')
    .option('--priority <n>', 'HA VMs: restart order after a host failure, higher first (-1000 to 1000)')
    .option('--restart <policy>', 'HA VMs: always or never')
    .option('--failback <policy>', 'HA VMs: none or immediate')
    .option('--json', 'print JSON')
    .action((name: string, o: { group?: string | false; priority?: string; restart?: string; failback?: string; json?: boolean }) => run(o.json, async () => {
      const body = {
        ...(o.group !== undefined ? { group: o.group === false ? null : o.group } : {}), ...(o.priority !== undefined ? { haPriority: Number(o.priority) } : {}),
        ...(o.restart !== undefined ? { haRestart: o.restart } : {}), ...(o.failback !== undefined ? { haFailback: o.failback } : {}),
      };
      if (Object.keys(body).length === 0) throw new FerryError('INVALID_INPUT', 'Nothing to change: give --group, --no-group, --priority, --restart or --failback.');
      const { host } = await locateVm(name);
      const r = await api<{ vm: VmView; ha: { priority: number; restart: string; failback: string } | null }>(host, 'PATCH', `/v1/vms/${name}`, body);
      if (o.json) { printJson(r); return; }
      const ha = r.ha ? `, priority ${r.ha.priority}, restart ${r.ha.restart}, failback ${r.ha.failback}` : '';
      process.stdout.write(`${name} on ${r.vm.host}: group ${r.vm.group ?? 'none'}${ha}\n`);
    }));

  vm.command('delete <name>').description('delete a VM and its disks').option('--json', 'print JSON')
    .action((name: string, o: { json?: boolean }) => run(o.json, async () => {
      const { host } = await locateVm(name);
      const r = await api<{ deleted: string }>(host, 'DELETE', `/v1/vms/${name}`);
      if (o.json) printJson(r);
      else process.stdout.write(`deleted ${name}\n`);
    }));

  vm.command('list').description('VMs on every host of the context').option('--json', 'print JSON')
    .action((o: { json?: boolean }) => run(o.json, async () => {
      const answers = await everyHost<VmView[]>('/v1/vms');
      const vms = answers.flatMap((a) => a.result).filter((v) => !v.incoming);
      if (o.json) printJson(vms);
      else printTable(HEAD, vms.map(vmRow));
      warnUnreachable(answers);
    }));

  vm.command('show <name>').description('one VM').option('--json', 'print JSON')
    .action((name: string, o: { json?: boolean }) => run(o.json, async () => {
      const { vm: v } = await locateVm(name);
      if (o.json) { printJson(v); return; }
      printTable(['FIELD', 'VALUE'], [
        ['name', v.name], ['uuid', v.uuid], ['host', v.host], ['state', v.state], ['reason', v.reason], ['pid', v.pid],
        ['ip', v.ip], ['mac', v.mac], ['memory', `${v.memoryMiB} MiB`], ['cpus', v.cpus], ['cpu model', v.cpuModel],
        ['machine', v.machine], ['ha', String(v.ha)], ['group', v.group],
        ...v.disks.map((d, i) => [`disk${i}`, `${d.path} (${formatBytes(d.sizeBytes)}, pool ${d.pool})`]),
      ]);
    }));
}
