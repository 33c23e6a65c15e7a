// Administration: users, teams, agents, service accounts (admin) and public links
// (analyst and admin).

import { useState } from 'preact/hooks';
import type { PublicLink, Role, ServiceAccount, Team, User } from '../api';
import { ConfirmButton, Empty, ErrorBox, Spinner, useAsync } from '../components/common';
import { ShareLink } from '../components/ViewsMenu';
import { useApp } from '../context';
import { formatHash } from '../route';
import { formatTsShort, parseTs } from '../time';

const ROLES: Role[] = ['admin', 'analyst', 'viewer'];

export function splitList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

function when(s: string | undefined): string {
  if (!s) return '–';
  try {
    return formatTsShort(parseTs(s)).slice(0, 19);
  } catch {
    return s;
  }
}

export function AdminPage({ section }: { section: string }) {
  const { user, navigate } = useApp();
  const admin = user?.role === 'admin';
  const sections: [string, string][] = admin
    ? [
        ['users', 'Users'],
        ['teams', 'Teams'],
        ['agents', 'Agents'],
        ['service-accounts', 'Service accounts'],
        ['links', 'Public links'],
      ]
    : [['links', 'Public links']];
  const cur = sections.find(([k]) => k === section)?.[0] ?? sections[0][0];
  return (
    <div class="page admin">
      <div class="tabs" role="tablist">
        {sections.map(([k, label]) => (
          <button role="tab" aria-selected={k === cur} class={k === cur ? 'active' : ''} onClick={() => navigate(formatHash(['admin', k]))}>
            {label}
          </button>
        ))}
      </div>
      <div class="admin-body">
        {cur === 'users' && <Users />}
        {cur === 'teams' && <Teams />}
        {cur === 'agents' && <Agents />}
        {cur === 'service-accounts' && <ServiceAccounts />}
        {cur === 'links' && <Links />}
      </div>
    </div>
  );
}

function Users() {
  const { api, user: me } = useApp();
  const [rev, setRev] = useState(0);
  const list = useAsync(() => api.users(), [rev]);
  const [err, setErr] = useState<Error | undefined>();
  const [form, setForm] = useState({ username: '', password: '', role: 'viewer' as Role, teams: '' });
  const [edit, setEdit] = useState<{ username: string; role: Role; teams: string; password: string } | null>(null);
  const act = (p: Promise<unknown>) =>
    p.then(
      () => (setErr(undefined), setRev(rev + 1)),
      (e: Error) => setErr(e),
    );
  return (
    <div>
      <h3>Users</h3>
      {err && <ErrorBox error={err} />}
      {list.error && <ErrorBox error={list.error} />}
      {list.loading && !list.data && <Spinner />}
      {list.data && (
        <table class="grid" data-testid="users">
          <thead>
            <tr>
              <th>username</th>
              <th>role</th>
              <th>teams</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data.map((u: User) =>
              edit?.username === u.username ? (
                <tr>
                  <td>{u.username}</td>
                  <td>
                    <select value={edit.role} onChange={(e) => setEdit({ ...edit, role: (e.target as HTMLSelectElement).value as Role })}>
                      {ROLES.map((r) => (
                        <option value={r}>{r}</option>
                      ))}
                    </select>
                  </td>
                  <td>
                    <input value={edit.teams} placeholder="team-a, team-b" onInput={(e) => setEdit({ ...edit, teams: (e.target as HTMLInputElement).value })} />
                    <input
                      type="password"
                      value={edit.password}
                      placeholder="new password (optional)"
                      onInput={(e) => setEdit({ ...edit, password: (e.target as HTMLInputElement).value })}
                    />
                  </td>
                  <td class="actions">
                    <button
                      class="btn small primary"
                      onClick={() =>
                        act(
                          api.updateUser(u.username, {
                            username: u.username,
                            role: edit.role,
                            teams: splitList(edit.teams),
                            ...(edit.password ? { password: edit.password } : {}),
                          }),
                        ).then(() => setEdit(null))
                      }
                    >
                      Save
                    </button>
                    <button class="btn small" onClick={() => setEdit(null)}>
                      Cancel
                    </button>
                  </td>
                </tr>
              ) : (
                <tr>
                  <td>
                    {u.username}
                    {u.username === me?.username && <span class="muted"> (you)</span>}
                  </td>
                  <td>{u.role}</td>
                  <td>{(u.teams ?? []).join(', ') || <span class="muted">–</span>}</td>
                  <td class="actions">
                    <button class="btn small" onClick={() => setEdit({ username: u.username, role: u.role, teams: (u.teams ?? []).join(', '), password: '' })}>
                      Edit
                    </button>
                    {u.username !== me?.username && <ConfirmButton label="Delete" onConfirm={() => act(api.deleteUser(u.username))} />}
                  </td>
                </tr>
              ),
            )}
          </tbody>
        </table>
      )}
      <form
        class="form inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          act(api.createUser({ username: form.username.trim(), password: form.password, role: form.role, teams: splitList(form.teams) })).then(() =>
            setForm({ username: '', password: '', role: 'viewer', teams: '' }),
          );
        }}
      >
        <strong>New user</strong>
        <input required placeholder="username" value={form.username} onInput={(e) => setForm({ ...form, username: (e.target as HTMLInputElement).value })} />
        <input required type="password" placeholder="password" value={form.password} onInput={(e) => setForm({ ...form, password: (e.target as HTMLInputElement).value })} />
        <select value={form.role} onChange={(e) => setForm({ ...form, role: (e.target as HTMLSelectElement).value as Role })}>
          {ROLES.map((r) => (
            <option value={r}>{r}</option>
          ))}
        </select>
        <input placeholder="teams (comma separated)" value={form.teams} onInput={(e) => setForm({ ...form, teams: (e.target as HTMLInputElement).value })} />
        <button class="btn primary" type="submit">
          Create
        </button>
      </form>
    </div>
  );
}

function Teams() {
  const { api } = useApp();
  const [rev, setRev] = useState(0);
  const list = useAsync(() => api.teams(), [rev]);
  const agents = useAsync(() => api.agents(), []);
  const [err, setErr] = useState<Error | undefined>();
  const [name, setName] = useState('');
  const [edit, setEdit] = useState<{ name: string; agents: string } | null>(null);
  const act = (p: Promise<unknown>) =>
    p.then(
      () => (setErr(undefined), setRev(rev + 1)),
      (e: Error) => setErr(e),
    );
  return (
    <div>
      <h3>Teams</h3>
      <div class="muted small">A team shares saved searches and map positions, and sees the agents assigned to it.</div>
      {err && <ErrorBox error={err} />}
      {list.error && <ErrorBox error={list.error} />}
      {list.loading && !list.data && <Spinner />}
      {list.data && list.data.length === 0 && <Empty>No teams yet.</Empty>}
      {list.data && list.data.length > 0 && (
        <table class="grid" data-testid="teams">
          <thead>
            <tr>
              <th>team</th>
              <th>agents</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data.map((t: Team) => (
              <tr>
                <td>{t.name}</td>
                <td>
                  {edit?.name === t.name ? (
                    <input
                      list="agent-names"
                      value={edit.agents}
                      placeholder="agent-1, agent-2"
                      onInput={(e) => setEdit({ ...edit, agents: (e.target as HTMLInputElement).value })}
                    />
                  ) : (
                    (t.agents ?? []).join(', ') || <span class="muted">none</span>
                  )}
                </td>
                <td class="actions">
                  {edit?.name === t.name ? (
                    <>
                      <button class="btn small primary" onClick={() => act(api.updateTeam({ name: t.name, agents: splitList(edit.agents) })).then(() => setEdit(null))}>
                        Save
                      </button>
                      <button class="btn small" onClick={() => setEdit(null)}>
                        Cancel
                      </button>
                    </>
                  ) : (
                    <>
                      <button class="btn small" onClick={() => setEdit({ name: t.name, agents: (t.agents ?? []).join(', ') })}>
                        Edit agents
                      </button>
                      <ConfirmButton label="Delete" onConfirm={() => act(api.deleteTeam(t.name))} />
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <datalist id="agent-names">
        {(agents.data ?? []).map((a) => (
          <option value={a.agent} />
        ))}
      </datalist>
      <form
        class="form inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          act(api.createTeam({ name: name.trim(), agents: [] })).then(() => setName(''));
        }}
      >
        <strong>New team</strong>
        <input required placeholder="name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <button class="btn primary" type="submit">
          Create
        </button>
      </form>
    </div>
  );
}

function Agents() {
  const { api } = useApp();
  const list = useAsync(() => api.agents(), []);
  return (
    <div>
      <h3>Agents</h3>
      <div class="muted small">Agents seen in the lake or in status reports. Assign them to teams on the Teams page.</div>
      {list.error && <ErrorBox error={list.error} />}
      {list.loading && !list.data && <Spinner />}
      {list.data && list.data.length === 0 && <Empty>No agent has sent data yet.</Empty>}
      {list.data && list.data.length > 0 && (
        <table class="grid" data-testid="agents-admin">
          <thead>
            <tr>
              <th>agent</th>
              <th>team</th>
              <th>last seen</th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((a) => (
              <tr>
                <td>{a.agent}</td>
                <td>{a.team || <span class="muted">–</span>}</td>
                <td>{when(a.last_seen)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function ServiceAccounts() {
  const { api } = useApp();
  const [rev, setRev] = useState(0);
  const list = useAsync(() => api.serviceAccounts(), [rev]);
  const [err, setErr] = useState<Error | undefined>();
  const [form, setForm] = useState({ name: '', role: 'viewer' as Role, teams: '' });
  const [created, setCreated] = useState<ServiceAccount | null>(null);
  return (
    <div>
      <h3>Service accounts</h3>
      <div class="muted small">For scripts and probes: exchange the API key for a token with POST /api/v1/auth/token.</div>
      {err && <ErrorBox error={err} />}
      {created?.api_key && (
        <div class="notice">
          API key of <strong>{created.name}</strong> (shown once, copy it now):{' '}
          <input class="key" readOnly value={created.api_key} onFocus={(e) => (e.target as HTMLInputElement).select()} data-testid="api-key" />
          <button class="btn ghost small" onClick={() => setCreated(null)}>
            ✕
          </button>
        </div>
      )}
      {list.error && <ErrorBox error={list.error} />}
      {list.loading && !list.data && <Spinner />}
      {list.data && list.data.length === 0 && <Empty>No service accounts.</Empty>}
      {list.data && list.data.length > 0 && (
        <table class="grid">
          <thead>
            <tr>
              <th>name</th>
              <th>role</th>
              <th>teams</th>
              <th>created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data.map((s) => (
              <tr>
                <td>{s.name}</td>
                <td>{s.role}</td>
                <td>{(s.teams ?? []).join(', ') || <span class="muted">–</span>}</td>
                <td>{when(s.created_at)}</td>
                <td class="actions">
                  <ConfirmButton
                    label="Delete"
                    onConfirm={() =>
                      api.deleteServiceAccount(s.name).then(
                        () => setRev(rev + 1),
                        (e: Error) => setErr(e),
                      )
                    }
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form
        class="form inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          api.createServiceAccount({ name: form.name.trim(), role: form.role, teams: splitList(form.teams) }).then(
            (s) => {
              setCreated(s);
              setErr(undefined);
              setForm({ name: '', role: 'viewer', teams: '' });
              setRev(rev + 1);
            },
            (x: Error) => setErr(x),
          );
        }}
      >
        <strong>New service account</strong>
        <input required placeholder="name" value={form.name} onInput={(e) => setForm({ ...form, name: (e.target as HTMLInputElement).value })} />
        <select value={form.role} onChange={(e) => setForm({ ...form, role: (e.target as HTMLSelectElement).value as Role })}>
          {ROLES.map((r) => (
            <option value={r}>{r}</option>
          ))}
        </select>
        <input placeholder="teams (comma separated)" value={form.teams} onInput={(e) => setForm({ ...form, teams: (e.target as HTMLInputElement).value })} />
        <button class="btn primary" type="submit">
          Create
        </button>
      </form>
    </div>
  );
}

function Links() {
  const { api } = useApp();
  const [rev, setRev] = useState(0);
  const list = useAsync(() => api.links(), [rev]);
  const views = useAsync(() => api.views(), []);
  const [err, setErr] = useState<Error | undefined>();
  const [viewId, setViewId] = useState('');
  const view = views.data?.find((v) => v.id === viewId);
  const [sharing, setSharing] = useState(false);
  const name = (id?: string) => views.data?.find((v) => v.id === id)?.name ?? id ?? '–';
  return (
    <div>
      <h3>Public links</h3>
      <div class="muted small">A public link shows one saved search to people without an account, until it expires. Its URL is shown once, when it is created.</div>
      {err && <ErrorBox error={err} />}
      {list.error && <ErrorBox error={list.error} />}
      {list.loading && !list.data && <Spinner />}
      {list.data && list.data.length === 0 && <Empty>No public links.</Empty>}
      {list.data && list.data.length > 0 && (
        <table class="grid" data-testid="links">
          <thead>
            <tr>
              <th>view</th>
              <th>owner</th>
              <th>created</th>
              <th>expires</th>
              <th>password</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data.map((l: PublicLink) => (
              <tr>
                <td>{name(l.view_id)}</td>
                <td>{l.owner || '–'}</td>
                <td>{when(l.created_at)}</td>
                <td>{when(l.expires_at)}</td>
                <td>{l.has_password ? (l.used ? 'one-time, used' : 'one-time') : 'none'}</td>
                <td class="actions">
                  <ConfirmButton
                    label="Revoke"
                    onConfirm={() =>
                      api.deleteLink(l.id).then(
                        () => setRev(rev + 1),
                        (e: Error) => setErr(e),
                      )
                    }
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div class="form inline-form">
        <strong>New link for</strong>
        <select value={viewId} onChange={(e) => setViewId((e.target as HTMLSelectElement).value)}>
          <option value="">choose a saved search…</option>
          {(views.data ?? []).map((v) => (
            <option value={v.id}>{v.name}</option>
          ))}
        </select>
        <button class="btn primary" disabled={!view} onClick={() => setSharing(true)}>
          Create…
        </button>
        {views.data && views.data.length === 0 && <span class="muted small">Save a search on the Explore page first.</span>}
      </div>
      {sharing && view && <ShareLink view={view} onClose={() => (setSharing(false), setRev(rev + 1))} />}
    </div>
  );
}
