// Hash routing: the whole UI state that matters (page, window, filter, selected
// communication) lives in the URL after '#', so views can be bookmarked and the
// files can be served from any static host without rewrite rules.

import type { Sort } from './api';
import { formatTs, parseTs, relativeWindow, type Window } from './time';

export interface Route {
  path: string[]; // e.g. ['explore'], ['admin', 'users'], ['public', token]
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const h = hash.replace(/^#/, '');
  const [p, qs = ''] = h.split('?', 2);
  const path = p
    .split('/')
    .filter(Boolean)
    .map((s) => decodeURIComponent(s));
  return { path: path.length ? path : ['explore'], params: new URLSearchParams(qs) };
}

export function formatHash(path: string[], params?: URLSearchParams | Record<string, string | undefined>): string {
  const sp = new URLSearchParams();
  if (params instanceof URLSearchParams) params.forEach((v, k) => v !== '' && sp.set(k, v));
  else for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined && v !== '') sp.set(k, v);
  const qs = sp.toString();
  return `#/${path.map(encodeURIComponent).join('/')}${qs ? `?${qs}` : ''}`;
}

export type Tab = 'map' | 'sequence' | 'detail';

/** What the explore page shows. Either `rel` (live, relative to now) or from/to. */
export interface ExploreState {
  rel: string; // '' when absolute
  from: number;
  to: number;
  q: string;
  tab: Tab;
  sel: string;
  /** The selected exchange's ts as the API returned it: a lookup hint for its detail ('' or absent: none). */
  at?: string;
  sort: Sort;
  /** true when the URL named no window at all (the UI may jump to the data). */
  defaulted: boolean;
}

const SORTS: Sort[] = ['ts', '-ts', 'duration_us', '-duration_us', 'status', '-status'];
export const DEFAULT_REL = '1h';

export function exploreFromParams(p: URLSearchParams, now: number): ExploreState {
  const rel = p.get('rel') ?? '';
  const fromS = p.get('from');
  const toS = p.get('to');
  let w: Window | undefined;
  let r = '';
  if (fromS && toS) {
    try {
      w = { from: parseTs(fromS), to: parseTs(toS) };
      if (!(w.to > w.from)) w = undefined;
    } catch {
      w = undefined;
    }
  }
  if (!w) {
    r = rel || DEFAULT_REL;
    try {
      w = relativeWindow(r, now);
    } catch {
      r = DEFAULT_REL;
      w = relativeWindow(r, now);
    }
  }
  const sort = (SORTS as string[]).includes(p.get('sort') ?? '') ? (p.get('sort') as Sort) : '-ts';
  const t = p.get('tab');
  const tab: Tab = t === 'sequence' || t === 'detail' ? t : 'map';
  return {
    rel: r,
    from: w.from,
    to: w.to,
    q: p.get('q') ?? '',
    tab,
    sel: p.get('sel') ?? '',
    at: (p.get('sel') && p.get('at')) || undefined,
    sort,
    defaulted: !fromS && !toS && !rel,
  };
}

export function exploreToParams(s: Omit<ExploreState, 'defaulted'>): Record<string, string | undefined> {
  return {
    ...(s.rel ? { rel: s.rel } : { from: formatTs(s.from), to: formatTs(s.to) }),
    q: s.q || undefined,
    tab: s.tab === 'map' ? undefined : s.tab,
    sel: s.sel || undefined,
    ...(s.sel && s.at ? { at: s.at } : {}),
    sort: s.sort === '-ts' ? undefined : s.sort,
  };
}
