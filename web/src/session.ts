// The login session: the JWT and the user, kept in localStorage so a reload keeps
// the user logged in. Public links use a scoped token held in memory only.

import type { LoginResponse, User } from './api';

const KEY = 'flowlake.session';

export interface Session {
  token: string;
  expires_at: string;
  user: User;
}

export function loadSession(storage: Storage | undefined = globalThis.localStorage): Session | null {
  try {
    const raw = storage?.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    if (!s.token || !s.user) return null;
    if (s.expires_at && Date.parse(s.expires_at) <= Date.now()) return null;
    return s;
  } catch {
    return null;
  }
}

export function saveSession(r: LoginResponse, storage: Storage | undefined = globalThis.localStorage): Session {
  const s: Session = { token: r.token, expires_at: r.expires_at, user: r.user };
  storage?.setItem(KEY, JSON.stringify(s));
  return s;
}

export function clearSession(storage: Storage | undefined = globalThis.localStorage): void {
  storage?.removeItem(KEY);
}

export function canWrite(u: User | null | undefined): boolean {
  return !!u && (u.role === 'admin' || u.role === 'analyst');
}
