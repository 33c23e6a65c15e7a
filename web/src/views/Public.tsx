// A public link, opened without an account: exchanges the link token for a token
// scoped to the shared view (asking for the password when the link has one) and
// shows that view read-only.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { Api, ApiError, type PublicView } from '../api';
import { ErrorBox, Spinner } from '../components/common';
import { AppContext, useApp } from '../context';
import { exploreToParams, formatHash } from '../route';
import { parseTs } from '../time';
import { Explore } from './Explore';

export function PublicPage({ token, params }: { token: string; params: URLSearchParams }) {
  const parent = useApp();
  const [pv, setPv] = useState<PublicView | null>(null);
  const [err, setErr] = useState<Error | undefined>();
  const [needPassword, setNeedPassword] = useState(false);
  const [password, setPassword] = useState('');
  const [pwErr, setPwErr] = useState<Error | undefined>();

  useEffect(() => {
    parent.api.publicView(token).then(setPv, (e: Error) => {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403) && /password/i.test(e.message)) setNeedPassword(true);
      else setErr(e);
    });
  }, [token]);

  const scoped = useMemo(
    () => (pv ? new Api({ base: parent.api.base, token: () => pv.token }) : null),
    [pv, parent.api.base],
  );

  // First visit: put the shared view's window and filter in the URL.
  useEffect(() => {
    if (!pv || params.has('from') || params.has('rel')) return;
    const v = pv.view;
    const p = v.relative
      ? exploreToParams({ rel: v.relative, from: 0, to: 0, q: v.q, tab: 'map', sel: '', sort: '-ts' })
      : exploreToParams({ rel: '', from: parseTs(v.from), to: parseTs(v.to), q: v.q, tab: 'map', sel: '', sort: '-ts' });
    parent.navigate(formatHash(['public', token], p), true);
  }, [pv]);

  if (err) {
    return (
      <div class="page">
        <ErrorBox error={err} />
        <div class="muted">This link may have expired or been revoked.</div>
      </div>
    );
  }
  if (needPassword && !pv) {
    return (
      <div class="login">
        <form
          class="login-box form"
          onSubmit={(e) => {
            e.preventDefault();
            parent.api.publicView(token, password).then(setPv, (x: Error) => setPwErr(x));
          }}
        >
          <div class="brand big">Shared view</div>
          <label>
            password
            <input type="password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
          </label>
          <div class="muted small">This shared view is protected by a one-time password.</div>
          {pwErr && <ErrorBox error={pwErr} />}
          <button class="btn primary" type="submit">
            Open
          </button>
        </form>
      </div>
    );
  }
  if (!pv || !scoped) return <Spinner label="Opening the shared view…" />;
  if (!params.has('from') && !params.has('rel')) return <Spinner />;
  // q stays the shared view's filter, whatever the URL says.
  const p = new URLSearchParams(params);
  if (pv.view.q) p.set('q', pv.view.q);
  else p.delete('q');
  return (
    <AppContext.Provider value={{ ...parent, api: scoped, readOnly: true, user: null }}>
      <div class="public-banner">
        Shared view <strong>{pv.view.name}</strong> — read-only{pv.view.q ? <> · filter <code>{pv.view.q}</code></> : null}
      </div>
      <Explore params={p} path={['public', token]} lockedQ />
    </AppContext.Provider>
  );
}
