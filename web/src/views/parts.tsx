// Small pieces the views share.

const TONE: Record<string, string> = {
  running: 'ok', ready: 'ok', completed: 'ok', moved: 'ok', returned: 'ok',
  migrating: 'info', queued: 'info', moving: 'info', draining: 'warn', paused: 'warn', maintenance: 'warn', drained: 'warn',
  stopped: 'idle', cancelled: 'idle',
  failed: 'bad', unreachable: 'bad', blocked: 'bad',
};

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge ${TONE[state] ?? 'idle'}`} data-state={state}>{state}</span>;
}

export function Meter({ label, used, total, text }: { label: string; used: number; total: number; text: string }) {
  const pct = total > 0 ? Math.min(100, Math.max(0, (used / total) * 100)) : 0;
  return (
    <div class="meter">
      <div class="meter-label"><span>{label}</span><span class="muted">{text}</span></div>
      <div class="bar"><div class={`fill ${pct > 90 ? 'hot' : ''}`} style={{ width: `${pct}%` }} /></div>
    </div>
  );
}

export function Empty({ children }: { children: preact.ComponentChildren }) {
  return <div class="empty muted">{children}</div>;
}

/** Ferry's mark: a ferry on a wave. */
export function Logo() {
  return (
    <svg class="logo" viewBox="0 0 24 24" aria-hidden="true">
      <rect width="24" height="24" rx="6" class="logo-bg" />
      <path d="M8 8.5h5.5l1.5 3H8z" class="logo-fg" />
      <path d="M4.5 12.5h15l-2.2 3.8H6.7z" class="logo-fg" />
      <path d="M4 19c1.3 0 1.3-.9 2.7-.9s1.3.9 2.6.9 1.3-.9 2.7-.9 1.3.9 2.6.9 1.3-.9 2.7-.9 1.3.9 2.7.9" class="logo-wave" />
    </svg>
  );
}
