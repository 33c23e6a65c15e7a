// The login page.

import { useEffect, useState } from 'preact/hooks';
import type { Api, LoginResponse } from '../api';
import { ErrorBox } from '../components/common';

export function Login({ api, onLogin, error, notice }: { api: Api; onLogin: (r: LoginResponse) => void; error?: Error; notice?: string }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [err, setErr] = useState<Error | undefined>(error);
  const [busy, setBusy] = useState(false);
  const [oidc, setOidc] = useState(false);
  useEffect(() => {
    api.authConfig().then(
      (c) => setOidc(!!c?.oidc),
      () => setOidc(false),
    );
  }, [api]);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr(undefined);
    try {
      onLogin(await api.login(username.trim(), password));
    } catch (x) {
      setErr(x as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="login">
      <form class="login-box form" onSubmit={submit} aria-label="login">
        <div class="brand big">
          <Logo /> flowlake
        </div>
        <div class="muted small">See how the parts of your system talk to each other.</div>
        {notice && <div class="state warn">{notice}</div>}
        <label>
          username
          <input name="username" autocomplete="username" required value={username} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          password
          <input
            name="password"
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
          />
        </label>
        {err && <ErrorBox error={err} />}
        <button class="btn primary" type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        {oidc && (
          <a class="btn" href={api.oidcLoginUrl()}>
            Log in with single sign-on
          </a>
        )}
      </form>
    </div>
  );
}

export function Logo() {
  return (
    <svg width="18" height="18" viewBox="0 0 16 16" aria-hidden="true">
      <path d="M4 8 L12 4 M4 8 L12 12" stroke="#6e7681" stroke-width="1.2" />
      <circle cx="4" cy="8" r="3" fill="#3d71d9" />
      <circle cx="12" cy="4" r="2.5" fill="#73bf69" />
      <circle cx="12" cy="12" r="2.5" fill="#ff9830" />
    </svg>
  );
}
