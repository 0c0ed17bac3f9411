// Move a VM: the compatibility report first (POST /v1/vms/:name/compare), then the move.
import { useEffect, useState } from 'preact/hooks';
import type { Ctx } from '../app';
import { call, describe } from '../api';
import type { Vm } from '../types';

interface Report { compatible: boolean; incompatibilities: { code: string; message: string }[] }

export function MoveDialog({ ctx, vm, onClose }: { ctx: Ctx; vm: Vm; onClose: (started: boolean) => void }) {
  const targets = ctx.ov.hosts.filter((h) => h.name !== vm.host && h.reachable).map((h) => h.name);
  const [dest, setDest] = useState(targets[0] ?? '');
  const [storage, setStorage] = useState(false);
  const [path, setPath] = useState('');
  const [report, setReport] = useState<Report | null>(null);
  const [checking, setChecking] = useState(false);
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  const [starting, setStarting] = useState(false);
  const options = { destination: dest, ...(storage ? { includeStorage: true, ...(path.trim() ? { storagePath: path.trim() } : {}) } : {}) };
  const name = encodeURIComponent(vm.name);

  useEffect(() => {
    if (!dest) return undefined;
    let stale = false;
    setReport(null); setError(null); setChecking(true);
    const t = setTimeout(() => {
      call<Report>('POST', `/v1/vms/${name}/compare`, options)
        .then((r) => { if (!stale) setReport(r); }, (e: unknown) => { if (!stale) setError(describe(e)); })
        .finally(() => { if (!stale) setChecking(false); });
    }, 250);
    return () => { stale = true; clearTimeout(t); };
  }, [dest, storage, path]);

  const start = async (): Promise<void> => {
    setStarting(true); setError(null);
    try {
      await call('POST', '/v1/migrations', { vm: vm.name, ...options });
      onClose(true);
    } catch (e) { setError(describe(e)); setStarting(false); }
  };

  return (
    <div class="overlay" onClick={(e) => { if (e.target === e.currentTarget) onClose(false); }}>
      <div class="dialog card" role="dialog" aria-modal="true" aria-labelledby="move-title">
        <header class="card-head"><h2 id="move-title">Move {vm.name}</h2><span class="muted">now on {vm.host}</span></header>
        <label for="dest">Destination host</label>
        <select id="dest" value={dest} onChange={(e) => setDest((e.target as HTMLSelectElement).value)}>
          {targets.map((t) => <option key={t} value={t}>{t}</option>)}
        </select>
        <label class="check"><input type="checkbox" id="include-storage" checked={storage} onChange={(e) => setStorage((e.target as HTMLInputElement).checked)} />
          Include storage (copy the disks; for disks the destination does not share)</label>
        <label for="storage-path">Destination folder for the disks</label>
        <input id="storage-path" type="text" disabled={!storage} placeholder="the destination's default pool" value={path}
          onInput={(e) => setPath((e.target as HTMLInputElement).value)} />
        <div class="report" data-testid="compat-report" aria-live="polite">
          <h3>Compatibility</h3>
          {checking ? <p class="muted">Checking {dest}…</p> : null}
          {report?.compatible ? <p class="ok-text" data-compatible="true">✓ {vm.name} can move to {dest}.</p> : null}
          {report && !report.compatible ? (
            <ul class="problems" data-compatible="false">
              {report.incompatibilities.map((p) => <li key={p.code + p.message}><code>{p.code}</code> {p.message}</li>)}
            </ul>
          ) : null}
        </div>
        {error ? <div class="banner error inline" role="alert" data-testid="error"><code>{error.code}</code> {error.message}</div> : null}
        <footer class="actions">
          <button class="ghost" onClick={() => onClose(false)}>Close</button>
          <button class="primary" data-action="start-move" disabled={!report?.compatible || starting} onClick={() => { void start(); }}>
            {starting ? 'Starting…' : `Move to ${dest}`}
          </button>
        </footer>
      </div>
    </div>
  );
}
