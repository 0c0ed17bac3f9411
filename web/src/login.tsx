import { useState } from 'preact/hooks';
import { describe, overview } from './api';
import type { Overview } from './types';
import { Logo } from './views/parts';

/** Sign-in with an API token (`ferry token create NAME --role viewer|operator|admin`). */
export function Login({ error, onSignedIn }: { error: { code: string; message: string } | null; onSignedIn: (tok: string, ov: Overview) => void }) {
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(error);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    try { onSignedIn(value.trim(), await overview(value.trim())); } catch (x) { setErr(describe(x)); } finally { setBusy(false); }
  };
  return (
    <div class="login">
      <form class="card login-card" onSubmit={(e) => { void submit(e); }}>
        <div class="brand big"><Logo /> Ferry</div>
        <p class="muted">Live migration for QEMU/KVM hosts. Sign in with an API token of this host.</p>
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" placeholder="ferry_…" value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        {err ? <div class="banner error inline" role="alert" data-testid="error"><code>{err.code}</code> {err.message}</div> : null}
        <button class="primary" type="submit" disabled={busy || value.trim() === ''}>{busy ? 'Signing in…' : 'Sign in'}</button>
        <p class="hint">Make one on the host with <code>ferry token create NAME --role operator</code>.</p>
      </form>
    </div>
  );
}
