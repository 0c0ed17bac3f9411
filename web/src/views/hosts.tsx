// Hosts: capacity, migration settings and state; drain and resume for the host that serves the page.
import { useState } from 'preact/hooks';
import type { Ctx } from '../app';
import { call } from '../api';
import { bytes, mib, ms, rate, when } from '../format';
import type { ClusterBrief, Host, HostEntry, HostSettings, Maintenance } from '../types';
import { Meter, StateBadge } from './parts';

function Settings({ s }: { s: HostSettings }) {
  const rows: [string, string][] = [
    ['Migration', s.incomingEnabled && s.outgoingEnabled ? 'in and out' : s.incomingEnabled ? 'incoming only' : s.outgoingEnabled ? 'outgoing only' : 'disabled'],
    ['Simultaneous moves', `${s.maxMigrations} live, ${s.maxStorageMigrations} storage`],
    ['Performance', s.performance],
    ['Networks', s.networks.length ? s.networks.map((n) => n.cidr).join(', ') : 'any shared'],
    ['Bandwidth cap', s.maxBandwidthBytesPerSec ? rate(s.maxBandwidthBytesPerSec) : 'none'],
    ['Downtime target', ms(s.downtimeTargetMs)],
    ['Post-copy', s.allowPostcopy ? 'allowed' : 'off'],
    ['Encryption', s.allowInsecureMigration ? 'TLS unless both allow plain' : 'TLS required'],
  ];
  return <dl class="kv">{rows.map(([k, v]) => [<dt key={`${k}-k`}>{k}</dt>, <dd key={`${k}-v`}>{v}</dd>])}</dl>;
}

/** The host's maintenance state; `ready` when in service. */
function maintenanceOf(h: Host): string {
  const s = h.maintenance?.state ?? h.state;
  return s === 'active' ? 'ready' : s;
}

/** The drain's ledger: where each VM went, or why it could not; and how the last run ended. */
function MaintenanceLedger({ m }: { m: Maintenance }) {
  const run = m.running ?? m.lastRun;
  if (m.vms.length === 0 && !run) return null;
  return (
    <div class="ledger" data-testid="maintenance">
      <h3>Maintenance</h3>
      {run ? (
        <p class="small">
          {run.operation === 'drain' ? 'Drain' : 'Resume'} {run.endedAt ? `ended ${when(run.endedAt)}` : `under way since ${when(run.startedAt)}`}
          {run.error ? <span class="muted"> · <code>{run.error.code}</code> {run.error.message}</span> : null}
        </p>
      ) : null}
      {m.vms.length > 0 ? (
        <ul class="plain small">
          {m.vms.map((v) => (
            <li key={v.vm}><span class="strong">{v.vm}</span> {v.destination ? `→ ${v.destination}` : ''} <StateBadge state={v.status} />
              {v.error ? <span class="muted"> <code>{v.error.code}</code> {v.error.message}</span> : null}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** Cluster membership: standalone, or the cluster's name, manager and members; why it is degraded. */
function ClusterLine({ c, host }: { c: ClusterBrief | null; host: string }) {
  if (!c) return <p class="small" data-testid="cluster">Standalone (no failover cluster)</p>;
  return (
    <p class="small" data-testid="cluster">
      Cluster <span class="strong">{c.name || '?'}</span>
      {c.manager ? <> · manager {c.manager === host ? <span class="tag">this host</span> : c.manager}</> : null}
      {c.members.length ? <> · members {c.members.join(', ')}</> : null}
      {c.degraded ? <><span class="badge warn">degraded</span><br /><span class="muted">{c.degraded}</span></> : null}
    </p>
  );
}

function HostCard({ entry, ctx }: { entry: HostEntry; ctx: Ctx }) {
  const [failback, setFailback] = useState(false);
  const h = entry.data?.host;
  if (!h) {
    return (
      <section class="card host" data-host={entry.name}>
        <header class="card-head"><h2>{entry.name}</h2><StateBadge state="unreachable" /></header>
        <p class="muted">{entry.url}</p>
        {entry.error ? <div class="banner error inline"><code>{entry.error.code}</code> {entry.error.message}</div> : null}
      </section>
    );
  }
  const used = h.memoryMiB - h.freeMemoryMiB;
  const state = maintenanceOf(h);
  const draining = state === 'draining' || state === 'drained' || state === 'maintenance';
  return (
    <section class="card host" data-host={h.name}>
      <header class="card-head">
        <h2>{h.name}{entry.self ? <span class="tag">this host</span> : null}</h2>
        <StateBadge state={state} />
      </header>
      <p class="muted small">{h.url} · QEMU {h.qemuVersion} · {h.machine} · {h.accel ? h.accel.toUpperCase() : 'accelerator not probed yet'}</p>
      <ClusterLine c={entry.data?.cluster ?? null} host={h.name} />
      <div class="stats">
        <div><span class="stat">{h.runningVmCount}</span><span class="muted"> of {h.vmCount} VMs running</span></div>
        <div><span class="stat">{h.cpus}</span><span class="muted"> CPUs</span></div>
        <div><span class="stat">{mib(h.freeMemoryMiB)}</span><span class="muted"> free for VMs</span></div>
      </div>
      <Meter label="Memory for VMs" used={used} total={h.memoryMiB} text={`${mib(used)} of ${mib(h.memoryMiB)} used`} />
      {h.pools.map((p) => (
        <Meter key={p.name} label={`Pool ${p.name}${p.sharedId ? ' (shared)' : ''}`} used={p.totalBytes - p.freeBytes} total={p.totalBytes}
          text={p.error ? `unavailable: ${p.error}` : `${bytes(p.freeBytes)} free of ${bytes(p.totalBytes)}`} />
      ))}
      <h3>Migration settings</h3>
      <Settings s={h.settings} />
      {h.maintenance ? <MaintenanceLedger m={h.maintenance} /> : null}
      {ctx.canAct && entry.self ? (
        <footer class="actions">
          {draining ? (
            <>
              <label class="check"><input type="checkbox" id="failback" checked={failback} onChange={(e) => setFailback((e.target as HTMLInputElement).checked)} /> Move drained VMs back</label>
              <button class="primary" data-action="resume" onClick={() => { void ctx.act(() => call('POST', '/v1/host/resume', { failback })); }}>Resume host</button>
            </>
          ) : (
            <button data-action="drain" onClick={() => { void ctx.act(() => call('POST', '/v1/host/drain', {})); }}>Drain host</button>
          )}
        </footer>
      ) : null}
      {ctx.canAct && !entry.self ? <footer class="actions"><a class="button" href={`${h.url}/ui/`} target="_blank" rel="noreferrer">Open {h.name}'s dashboard</a></footer> : null}
    </section>
  );
}

export function HostsView({ ctx }: { ctx: Ctx }) {
  return (
    <>
      <div class="view-head"><h1>Hosts</h1><p class="muted">{ctx.ov.hosts.length} hosts in this context</p></div>
      <div class="grid">{ctx.ov.hosts.map((e) => <HostCard key={e.name} entry={e} ctx={ctx} />)}</div>
    </>
  );
}
