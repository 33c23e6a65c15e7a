// The application context handed to every view.

import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api, User } from './api';

export interface AppCtx {
  api: Api;
  user: User | null;
  /** Public-link mode: no account, a token scoped to one saved view. */
  readOnly: boolean;
  logout: () => void;
  navigate: (hash: string, replace?: boolean) => void;
}

export const AppContext = createContext<AppCtx | null>(null);

export function useApp(): AppCtx {
  const c = useContext(AppContext);
  if (!c) throw new Error('AppContext missing');
  return c;
}
