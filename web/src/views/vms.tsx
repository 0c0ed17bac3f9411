// Virtual machines of every host: state, host, memory, disks; move, start and stop.
import type { Ctx } from '../app';
import { call } from '../api';
import { bytes, mib } from '../format';
import { allVms, selfName } from '../model';
import type { Vm } from '../types';
import { Empty, StateBadge } from './parts';

function Actions({ vm, ctx }: { vm: Vm; ctx: Ctx }) {
  if (!ctx.canAct) return null;
  // Actions go to the API of the host that serves the page; a VM elsewhere is acted on from its host's dashboard.
  if (vm.host !== selfName(ctx.ov)) return <span class="muted small">on {vm.host}'s dashboard</span>;
  const path = `/v1/vms/${encodeURIComponent(vm.name)}`;
  return (
    <div class="row-actions">
      {vm.state === 'running' ? <button class="small" data-action="move" onClick={() => ctx.openMove(vm)}>Move…</button> : null}
      {vm.state === 'stopped' || vm.state === 'failed'
        ? <button class="small" data-action="start" onClick={() => { void ctx.act(() => call('POST', `${path}/start`)); }}>Start</button> : null}
      {vm.state === 'running' || vm.state === 'paused'
        ? <button class="small" data-action="stop" onClick={() => { void ctx.act(() => call('POST', `${path}/stop`, {})); }}>Stop</button> : null}
    </div>
  );
}

export function VmsView({ ctx }: { ctx: Ctx }) {
  const vms = allVms(ctx.ov);
  return (
    <>
      <div class="view-head"><h1>Virtual machines</h1><p class="muted">{vms.length} VMs on {ctx.ov.hosts.filter((h) => h.reachable).length} hosts</p></div>
      {vms.length === 0 ? <Empty>No VMs yet. Create one with <code>ferry vm create NAME --host H --memory 256M</code>.</Empty> : (
        <div class="card flush">
          <table class="table">
            <thead><tr><th>Name</th><th>State</th><th>Host</th><th class="num">Memory</th><th class="num">vCPUs</th><th>Address</th><th>Disks</th><th /></tr></thead>
            <tbody>
              {vms.map((v) => (
                <tr key={`${v.host}/${v.name}`} data-vm={v.name}>
                  <td class="strong">{v.name}</td>
                  <td><StateBadge state={v.state} />{v.reason ? <div class="muted small">{v.reason}</div> : null}</td>
                  <td data-col="host">{v.host}</td>
                  <td class="num">{mib(v.memoryMiB)}</td>
                  <td class="num">{v.cpus}</td>
                  <td class="mono">{v.ip}</td>
                  <td>{v.disks.length === 0 ? <span class="muted">none</span>
                    : v.disks.map((d) => <div key={d.path} class="small" title={d.path}>{bytes(d.sizeBytes)} <span class="muted">in {d.pool}</span></div>)}</td>
                  <td class="right"><Actions vm={v} ctx={ctx} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
