// Saved searches (/api/v1/views): apply, save the current filter and window,
// delete, and share as a public link.

import { useState } from 'preact/hooks';
import type { PublicLink, SavedView } from '../api';
import { useApp } from '../context';
import { canWrite } from '../session';
import { formatTs, type Window } from '../time';
import { ErrorBox, Modal, Spinner, useAsync } from './common';

interface Props {
  q: string;
  rel: string;
  window: Window;
  onApply: (v: SavedView) => void;
}

export function ViewsMenu({ q, rel, window: w, onApply }: Props) {
  const { api, user } = useApp();
  const [open, setOpen] = useState(false);
  const [saving, setSaving] = useState(false);
  const [share, setShare] = useState<SavedView | null>(null);
  const [rev, setRev] = useState(0);
  const list = useAsync(() => api.views(), [rev], open);
  const [err, setErr] = useState<Error | undefined>();
  const write = canWrite(user);

  return (
    <div class="menu">
      <button class="btn small" data-testid="views" onClick={() => setOpen(!open)}>
        Saved ▾
      </button>
      {write && (
        <button class="btn small" data-testid="save-view" onClick={() => setSaving(true)}>
          Save
        </button>
      )}
      {open && (
        <div class="menu-pop" onMouseLeave={() => setOpen(false)}>
          {list.loading && !list.data && <Spinner />}
          {list.error && <ErrorBox error={list.error} />}
          {err && <ErrorBox error={err} />}
          {list.data && list.data.length === 0 && <div class="muted small pad">No saved searches yet.</div>}
          {list.data?.map((v) => (
            <div class="menu-item">
              <button class="linkish" onClick={() => (setOpen(false), onApply(v))} title={v.q}>
                <strong>{v.name}</strong>
                <span class="muted small"> {v.relative ? `last ${v.relative}` : 'fixed window'} · {v.q || 'no filter'}</span>
              </button>
              {write && (
                <span class="menu-actions">
                  <button class="btn small ghost" title="share as a public link" onClick={() => setShare(v)}>
                    Share
                  </button>
                  <button
                    class="btn small ghost"
                    title="delete"
                    onClick={() =>
                      api.deleteView(v.id).then(
                        () => setRev(rev + 1),
                        (e: Error) => setErr(e),
                      )
                    }
                  >
                    ✕
                  </button>
                </span>
              )}
            </div>
          ))}
        </div>
      )}
      {saving && (
        <SaveView
          q={q}
          rel={rel}
          window={w}
          teams={user?.teams ?? []}
          onClose={() => setSaving(false)}
          onSaved={() => (setSaving(false), setRev(rev + 1))}
        />
      )}
      {share && <ShareLink view={share} onClose={() => setShare(null)} />}
    </div>
  );
}

function SaveView(p: { q: string; rel: string; window: Window; teams: string[]; onClose: () => void; onSaved: () => void }) {
  const { api } = useApp();
  const [name, setName] = useState('');
  const [team, setTeam] = useState('');
  const [err, setErr] = useState<Error | undefined>();
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await api.createView({
        name: name.trim(),
        q: p.q,
        relative: p.rel,
        from: p.rel ? '' : formatTs(p.window.from),
        to: p.rel ? '' : formatTs(p.window.to),
        team,
      });
      p.onSaved();
    } catch (x) {
      setErr(x as Error);
    }
  };
  return (
    <Modal title="Save search" onClose={p.onClose}>
      <form class="form" onSubmit={submit}>
        <label>
          name
          <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <div class="muted small">
          filter: <code>{p.q || '(none)'}</code> · window: {p.rel ? `last ${p.rel} (live)` : 'the current fixed window'}
        </div>
        {p.teams.length > 0 && (
          <label>
            share with team
            <select value={team} onChange={(e) => setTeam((e.target as HTMLSelectElement).value)}>
              <option value="">only me</option>
              {p.teams.map((t) => (
                <option value={t}>{t}</option>
              ))}
            </select>
          </label>
        )}
        {err && <ErrorBox error={err} />}
        <div class="form-actions">
          <button class="btn primary" type="submit" disabled={!name.trim()}>
            Save
          </button>
        </div>
      </form>
    </Modal>
  );
}

/** Turns the API's link into a URL that opens this UI on the public view. */
export function publicUrl(link: PublicLink, here: Location = location): string {
  if (link.url && /#\/public\//.test(link.url)) return link.url;
  const tok = link.token || (link.url ? link.url.split('/').filter(Boolean).pop() ?? '' : link.id);
  return `${here.origin}${here.pathname}#/public/${encodeURIComponent(tok)}`;
}

export function ShareLink({ view, onClose }: { view: SavedView; onClose: () => void }) {
  const { api } = useApp();
  const [expires, setExpires] = useState('24h');
  const [password, setPassword] = useState('');
  const [link, setLink] = useState<PublicLink | null>(null);
  const [err, setErr] = useState<Error | undefined>();
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      setLink(await api.createLink(view.id, expires, password || undefined));
    } catch (x) {
      setErr(x as Error);
    }
  };
  return (
    <Modal title={`Public link to “${view.name}”`} onClose={onClose}>
      {link ? (
        <div class="form">
          <label>
            link (anyone with it can see this view until {link.expires_at})
            <input readOnly value={publicUrl(link)} onFocus={(e) => (e.target as HTMLInputElement).select()} data-testid="public-url" />
          </label>
          {password && <div class="muted small">Visitors must enter the password you set.</div>}
        </div>
      ) : (
        <form class="form" onSubmit={submit}>
          <label>
            expires in
            <select value={expires} onChange={(e) => setExpires((e.target as HTMLSelectElement).value)}>
              {['1h', '24h', '168h', '720h'].map((x) => (
                <option value={x}>{x}</option>
              ))}
            </select>
          </label>
          <label>
            password (optional)
            <input type="password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
          </label>
          {err && <ErrorBox error={err} />}
          <div class="form-actions">
            <button class="btn primary" type="submit">
              Create link
            </button>
          </div>
        </form>
      )}
    </Modal>
  );
}
