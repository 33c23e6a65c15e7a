// The application shell: hash routing, session, top bar.

import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { Spinner } from './components/common';
import { Api, type LoginResponse, type User } from './api';
import { AppContext, type AppCtx } from './context';
import type { Config } from './config';
import { formatHash, parseHash } from './route';
import { clearSession, loadSession, saveSession, type Session } from './session';
import { AdminPage } from './views/Admin';
import { Explore } from './views/Explore';
import { Login, Logo } from './views/Login';
import { PublicPage } from './views/Public';
import { StatusPage } from './views/Status';

function useHash(): string {
  const [h, setH] = useState(location.hash);
  useEffect(() => {
    const f = () => setH(location.hash);
    window.addEventListener('hashchange', f);
    return () => window.removeEventListener('hashchange', f);
  }, []);
  return h;
}

function navigate(hash: string, replace = false) {
  if (hash === location.hash) return;
  if (replace) {
    history.replaceState(null, '', hash);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else location.hash = hash;
}

export function App({ config }: { config: Config }) {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const hash = useHash();
  const route = parseHash(hash);
  const [expired, setExpired] = useState(false);
  const logout = useCallback(() => {
    clearSession();
    setSession(null);
  }, []);
  const onUnauthorized = useCallback(() => {
    setExpired(true);
    logout();
  }, [logout]);
  const api = useMemo(
    () => new Api({ base: config.api_base, token: () => loadSession()?.token ?? null, onUnauthorized }),
    [config.api_base, onUnauthorized],
  );
  const user: User | null = session?.user ?? null;
  const ctx: AppCtx = { api, user, readOnly: false, logout, navigate };
  const page = route.path[0];

  if (page === 'public' && route.path[1]) {
    return (
      <AppContext.Provider value={ctx}>
        <div class="app public">
          <header class="topbar">
            <span class="brand">
              <Logo /> flowlake
            </span>
          </header>
          <main>
            <PublicPage token={route.path[1]} params={route.params} />
          </main>
        </div>
      </AppContext.Provider>
    );
  }
  if (page === 'oidc') {
    return <OidcLanding api={api} params={route.params} onLogin={(r) => setSession(saveSession(r))} />;
  }
  if (!session) {
    return (
      <Login
        api={api}
        notice={expired ? 'Your session expired: log in again.' : ''}
        onLogin={(r: LoginResponse) => {
          setExpired(false);
          setSession(saveSession(r));
          if (page === 'login') navigate(route.params.get('next') || '#/explore', true);
        }}
      />
    );
  }
  if (page === 'login') {
    navigate(route.params.get('next') || '#/explore', true);
    return null;
  }
  const nav: [string, string, string[]][] = [
    ['explore', 'Explore', ['explore']],
    ['status', 'Capture status', ['status']],
  ];
  if (user?.role === 'admin') nav.push(['admin', 'Admin', ['admin', 'users']]);
  else if (user?.role === 'analyst') nav.push(['admin', 'Links', ['admin', 'links']]);
  return (
    <AppContext.Provider value={ctx}>
      <div class="app">
        <header class="topbar">
          <span class="brand">
            <Logo /> flowlake
          </span>
          <nav>
            {nav.map(([k, label, p]) => (
              <a href={formatHash(p)} class={page === k ? 'active' : ''}>
                {label}
              </a>
            ))}
          </nav>
          <span class="spacer" />
          <span class="user" data-testid="user">
            {user?.username} <span class="muted">({user?.role})</span>
          </span>
          <button class="btn small ghost" onClick={logout}>
            Log out
          </button>
        </header>
        <main>
          {page === 'status' ? (
            <StatusPage params={route.params} />
          ) : page === 'admin' ? (
            <AdminPage section={route.path[1] ?? ''} />
          ) : (
            <Explore params={route.params} path={['explore']} />
          )}
        </main>
      </div>
    </AppContext.Provider>
  );
}

/** The OIDC callback lands on #/oidc?token=…&expires_at=… (the token never reaches a server log). */
function OidcLanding({ api, params, onLogin }: { api: Api; params: URLSearchParams; onLogin: (r: LoginResponse) => void }) {
  const [err, setErr] = useState<Error | undefined>();
  useEffect(() => {
    const token = params.get('token') ?? '';
    const expires = params.get('expires_at') ?? '';
    if (!token) {
      setErr(new Error('the single sign-on answer holds no token'));
      return;
    }
    api.me(undefined, token).then(
      (user) => {
        onLogin({ token, expires_at: expires, user });
        navigate('#/explore', true);
      },
      (e: Error) => setErr(e),
    );
  }, []);
  if (err) return <Login api={api} onLogin={(r) => (onLogin(r), navigate('#/explore', true))} error={err} />;
  return <Spinner label="Logging in…" />;
}
