// The dashboard's shell: sign-in, the overview it polls, the event stream, navigation and errors.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, describe, followEvents, overview, token } from './api';
import type { Overview, Progress, Vm } from './types';
import { Login } from './login';
import { HostsView } from './views/hosts';
import { VmsView } from './views/vms';
import { LiveView } from './views/live';
import { HistoryView } from './views/history';
import { MoveDialog } from './views/move-dialog';
import { sourceJobs } from './model';
import { Logo } from './views/parts';

const VIEWS = [['hosts', 'Hosts'], ['vms', 'Virtual machines'], ['migrations', 'Live migrations'], ['history', 'History']] as const;
type View = typeof VIEWS[number][0];
const viewOf = (hash: string): View => (VIEWS.find(([v]) => `#/${v}` === hash)?.[0] ?? 'hosts');

/** What every view gets: the overview, what the caller may do, and how to act. */
export interface Ctx {
  ov: Overview;
  /** Progress of running moves from the event stream, by job id (fresher than the overview's). */
  live: Record<string, Progress>;
  canAct: boolean;
  /** Runs an action; its error is shown as the API's code and sentence; the overview is read again after. */
  act: (what: () => Promise<unknown>) => Promise<boolean>;
  openMove: (vm: Vm) => void;
}

export function App() {
  const [tok, setTok] = useState(token.get());
  const [ov, setOv] = useState<Overview | null>(null);
  const [live, setLive] = useState<Record<string, Progress>>({});
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  const [view, setView] = useState<View>(viewOf(location.hash));
  const [moving, setMoving] = useState<Vm | null>(null);
  const timer = useRef<number>();

  const signOut = useCallback((why?: { code: string; message: string }) => {
    token.clear(); setTok(null); setOv(null); setLive({}); setError(why ?? null);
  }, []);

  const refresh = useCallback(async () => {
    try {
      setOv(await overview());
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) signOut(describe(e));
      else setError(describe(e));
    }
  }, [signOut]);

  useEffect(() => {
    const onHash = (): void => setView(viewOf(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    if (!tok) return undefined;
    void refresh();
    timer.current = window.setInterval(() => { void refresh(); }, 1500);
    const ac = new AbortController();
    void followEvents((e) => {
      if (e.type === 'migration.progress' && typeof e.id === 'string') {
        const id = e.id;
        setLive((l) => ({ ...l, [id]: e as unknown as Progress }));
      } else if (e.type === 'migration.state' || e.type === 'vm.state' || e.type === 'host.maintenance') void refresh();
    }, ac.signal);
    return () => { clearInterval(timer.current); ac.abort(); };
  }, [tok, refresh]);

  const act = useCallback(async (what: () => Promise<unknown>): Promise<boolean> => {
    try { await what(); setError(null); return true; } catch (e) { setError(describe(e)); return false; } finally { void refresh(); }
  }, [refresh]);

  if (!tok) return <Login error={error} onSignedIn={(t, o) => { token.set(t); setTok(t); setOv(o); setError(null); }} />;

  const ctx: Ctx | null = ov ? { ov, live, canAct: ov.you.role !== 'viewer', act, openMove: setMoving } : null;
  const self = ov?.hosts.find((h) => h.self)?.name;
  const running = ov ? sourceJobs(ov).filter((j) => j.status === 'running' || j.status === 'queued').length : 0;
  return (
    <div class="shell">
      <header class="top">
        <div class="brand"><Logo /> Ferry</div>
        <nav class="tabs">
          {VIEWS.map(([v, label]) => (
            <a key={v} href={`#/${v}`} class={view === v ? 'tab active' : 'tab'} data-view={v}>
              {label}{v === 'migrations' && running > 0 ? <span class="count">{running}</span> : null}
            </a>
          ))}
        </nav>
        <div class="who">
          {ov ? <span>{ov.you.name} <span class={`role role-${ov.you.role}`}>{ov.you.role}</span> on {self}</span> : null}
          <button class="ghost" onClick={() => signOut()}>Sign out</button>
        </div>
      </header>
      {error ? (
        <div class="banner error" role="alert" data-testid="error">
          <code>{error.code}</code> {error.message}
          <button class="ghost small" aria-label="Dismiss" onClick={() => setError(null)}>✕</button>
        </div>
      ) : null}
      <main class="content">
        {!ctx ? <p class="muted">Loading…</p>
          : view === 'hosts' ? <HostsView ctx={ctx} />
            : view === 'vms' ? <VmsView ctx={ctx} />
              : view === 'migrations' ? <LiveView ctx={ctx} />
                : <HistoryView ctx={ctx} />}
      </main>
      {moving && ctx ? <MoveDialog ctx={ctx} vm={moving} onClose={(started) => { setMoving(null); if (started) location.hash = '#/migrations'; }} /> : null}
    </div>
  );
}
