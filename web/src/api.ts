// The client of the flowlake query API (see functions/query/openapi.yaml and
// /api/v1/openapi.json). One place builds URLs, adds the bearer token and turns
// every non-2xx answer into an ApiError carrying the server's message, code and,
// for filter errors, the byte offset `pos` in q.

import { formatTs, type Window } from './time';

export type Role = 'admin' | 'analyst' | 'viewer';

export interface User {
  username: string;
  role: Role;
  teams: string[];
  created_at?: string;
}

export interface LoginResponse {
  token: string;
  expires_at: string;
  user: User;
}

export interface MapNode {
  id: string;
  ip: string;
  name: string;
  kind: 'client' | 'server' | 'both';
  requests: number;
  errors: number;
  bytes: number;
}

export interface MapEdge {
  id: string;
  source: string;
  target: string;
  protocol: 'http' | 'tls' | 'tcp' | 'dns' | string;
  count: number;
  errors: number;
  p50_us: number;
  p95_us: number;
  bytes: number;
}

export interface MapData {
  nodes: MapNode[];
  edges: MapEdge[];
}

export interface Bucket {
  ts: string;
  count: number;
  errors: number;
  p50_us: number;
  p95_us: number;
}

export interface QualityBucket {
  ts: string;
  captured: number;
  dropped: number;
  overflow: number;
  gaps: number;
  missing_bytes: number;
}

export interface Timeline {
  step_us: number;
  buckets: Bucket[];
  quality: QualityBucket[];
}

export interface Summary {
  id: string;
  ts: string;
  ts_end: string;
  duration_us: number;
  agent: string;
  client_ip: string;
  client_port: number;
  server_ip: string;
  server_port: number;
  client_name: string;
  server_name: string;
  method: string;
  host: string;
  path: string;
  status: number;
  req_body_bytes: number;
  resp_body_bytes: number;
  content_type: string;
  tls: boolean;
  complete: boolean;
  /** true when the exchange counts as an error (5xx, no response, parse error). */
  error: boolean | string;
  /** The parser's message for a malformed exchange. */
  parse_error?: string;
  tcp_id: string;
}

/** The parser's message of an exchange, if any. */
export function parseError(s: Pick<Summary, 'error' | 'parse_error'>): string {
  return s.parse_error || (typeof s.error === 'string' ? s.error : '');
}

export interface TcpFacts {
  packets_c2s?: number;
  packets_s2c?: number;
  bytes_c2s?: number;
  bytes_s2c?: number;
  missing_bytes?: number;
  retransmissions?: number;
  rtt_us?: number;
  close?: string;
  segments?: string[];
  [k: string]: unknown;
}

export interface TlsInfo {
  version?: string;
  sni?: string;
  alpn?: string;
  cipher?: string;
  decrypted?: boolean;
  key_status?: string;
  [k: string]: unknown;
}

export interface Detail extends Summary {
  uri: string;
  query: string;
  version: string;
  reason: string;
  req_headers: [string, string][];
  resp_headers: [string, string][];
  req_body: string;
  resp_body: string;
  user_agent: string;
  community_id: string;
  seq: number;
  tcp: TcpFacts | null;
  tls_info: TlsInfo | null;
}

export interface Page {
  items: Summary[];
  next: string;
}

export type Sort = 'ts' | '-ts' | 'duration_us' | '-duration_us' | 'status' | '-status';

export interface Participant {
  id: string;
  name: string;
  ip: string;
}

export interface Call {
  id: string;
  ts: string;
  duration_us: number;
  from: string;
  to: string;
  label: string;
  status: number;
  error: boolean | string;
}

export interface Sequence {
  participants: Participant[];
  calls: Call[];
}

export interface AgentStatus {
  agent: string;
  last_seen: string;
  streams: number;
  captured: number;
  filtered: number;
  dropped: number;
  overflow: number;
  segments_uploaded: number;
  bytes_uploaded: number;
  errors: number;
  parse_lag_s: number;
}

export interface StatusPoint {
  agent: string;
  ts: string;
  captured: number;
  filtered: number;
  dropped: number;
  overflow: number;
}

export interface Status {
  agents: AgentStatus[];
  series: StatusPoint[];
}

export interface Field {
  name: string;
  type: 'string' | 'int' | 'bool' | 'time' | 'duration';
  description: string;
}

export interface SavedView {
  id: string;
  name: string;
  q: string;
  from: string;
  to: string;
  relative: string;
  owner?: string;
  team?: string;
  created_at?: string;
}

export interface Position {
  x: number;
  y: number;
}

export type Scope = 'user' | 'team';

export interface PublicLink {
  id: string;
  /** Only in the answer of POST /links (the token is shown once). */
  url?: string;
  token?: string;
  expires_at: string;
  view_id?: string;
  owner?: string;
  created_at?: string;
  has_password?: boolean;
  used?: boolean;
}

export interface Team {
  name: string;
  agents: string[];
  created_at?: string;
}

export interface AgentInfo {
  agent: string;
  team?: string;
  last_seen?: string;
  [k: string]: unknown;
}

export interface ServiceAccount {
  name: string;
  role: Role;
  teams: string[];
  api_key?: string;
  created_at?: string;
}

export interface PublicView {
  view: SavedView;
  token: string;
}

/** A failed API call: HTTP status, the server's message, code and (filters) pos. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
    readonly pos?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Parses an error response body per the contract; tolerates non-JSON bodies. */
export function errorFrom(status: number, statusText: string, body: string): ApiError {
  try {
    const j = JSON.parse(body) as { error?: unknown; code?: unknown; pos?: unknown };
    if (j && typeof j.error === 'string') {
      return new ApiError(
        status,
        j.error,
        typeof j.code === 'string' ? j.code : codeFor(status),
        typeof j.pos === 'number' ? j.pos : undefined,
      );
    }
  } catch {
    /* not JSON */
  }
  const text = body.trim().slice(0, 300);
  return new ApiError(status, text || statusText || `HTTP ${status}`, codeFor(status));
}

function codeFor(status: number): string {
  switch (status) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    default:
      return status === 0 ? 'network' : 'internal';
  }
}

/** The selection every data route takes. */
export interface Selection {
  window: Window;
  q: string;
}

type Params = Record<string, string | number | undefined | null>;

export function selectionParams(sel: Selection): Params {
  return { from: formatTs(sel.window.from), to: formatTs(sel.window.to), q: sel.q.trim() || undefined };
}

/** Builds base + path + query string, skipping empty parameters. */
export function buildUrl(base: string, path: string, params?: Params): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined || v === null || v === '') continue;
    qs.set(k, String(v));
  }
  const s = qs.toString();
  return `${base.replace(/\/+$/, '')}${path}${s ? `?${s}` : ''}`;
}

export interface ApiOptions {
  base: string;
  token: () => string | null;
  /** Called on 401 from an authenticated route (expired or revoked token). */
  onUnauthorized?: () => void;
  fetch?: typeof fetch;
}

export class Api {
  private readonly f: typeof fetch;
  constructor(private readonly opts: ApiOptions) {
    this.f = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  get base(): string {
    return this.opts.base;
  }

  url(path: string, params?: Params): string {
    return buildUrl(this.opts.base, path, params);
  }

  /** Performs a request and returns the raw Response (2xx only). */
  async raw(
    method: string,
    path: string,
    init: { params?: Params; body?: unknown; signal?: AbortSignal; auth?: boolean; token?: string } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const auth = init.auth !== false;
    const tok = auth ? (init.token ?? this.opts.token()) : null;
    if (tok) headers.Authorization = `Bearer ${tok}`;
    let body: string | undefined;
    if (init.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(init.body);
    }
    let res: Response;
    try {
      res = await this.f(this.url(path, init.params), { method, headers, body, signal: init.signal });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new ApiError(0, `cannot reach the API: ${(e as Error).message}`, 'network');
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      const err = errorFrom(res.status, res.statusText, text);
      if (res.status === 401 && auth && tok) this.opts.onUnauthorized?.();
      throw err;
    }
    return res;
  }

  async json<T>(
    method: string,
    path: string,
    init: { params?: Params; body?: unknown; signal?: AbortSignal; auth?: boolean; token?: string } = {},
  ): Promise<T> {
    const res = await this.raw(method, path, init);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, `invalid JSON from ${path}`, 'internal');
    }
  }

  // --- auth
  login(username: string, password: string): Promise<LoginResponse> {
    return this.json('POST', '/api/v1/auth/login', { body: { username, password }, auth: false });
  }
  authConfig(): Promise<{ oidc: boolean }> {
    return this.json('GET', '/api/v1/auth/config', { auth: false });
  }
  /** Where the browser goes to log in with the OIDC provider. */
  oidcLoginUrl(): string {
    return this.url('/api/v1/auth/oidc/login');
  }
  me(signal?: AbortSignal, token?: string): Promise<User> {
    return this.json('GET', '/api/v1/auth/me', { signal, token });
  }
  publicView(token: string, password?: string): Promise<PublicView> {
    const path = `/api/v1/public/${encodeURIComponent(token)}`;
    return password === undefined
      ? this.json('GET', path, { auth: false })
      : this.json('POST', path, { body: { password }, auth: false });
  }

  // --- data
  map(sel: Selection, signal?: AbortSignal): Promise<MapData> {
    return this.json('GET', '/api/v1/map', { params: selectionParams(sel), signal });
  }
  timeline(sel: Selection, step?: string, signal?: AbortSignal): Promise<Timeline> {
    return this.json('GET', '/api/v1/timeline', { params: { ...selectionParams(sel), step }, signal });
  }
  communications(
    sel: Selection,
    opts: { limit?: number; cursor?: string; sort?: Sort } = {},
    signal?: AbortSignal,
  ): Promise<Page> {
    return this.json('GET', '/api/v1/communications', {
      params: { ...selectionParams(sel), limit: opts.limit, cursor: opts.cursor, sort: opts.sort },
      signal,
    });
  }
  /**
   * The detail of exchange id. ts, the exchange's ts as a list or sequence returned it, is a hint that lets the
   * server read only the lake partition around it (a wrong or missing one is only slower).
   */
  communication(id: string, ts?: string, signal?: AbortSignal): Promise<Detail> {
    return this.json('GET', `/api/v1/communications/${encodeURIComponent(id)}`, { params: { ts: ts || undefined }, signal });
  }
  /** The pcap of exchange id's TCP connection; ts as for communication. */
  async pcap(id: string, ts?: string): Promise<Blob> {
    const res = await this.raw('GET', `/api/v1/communications/${encodeURIComponent(id)}/pcap`, { params: { ts: ts || undefined } });
    return res.blob();
  }
  async har(sel: Selection): Promise<Blob> {
    const res = await this.raw('GET', '/api/v1/export/har', { params: selectionParams(sel) });
    return res.blob();
  }
  sequence(sel: Selection, limit = 200, signal?: AbortSignal): Promise<Sequence> {
    return this.json('GET', '/api/v1/sequence', { params: { ...selectionParams(sel), limit }, signal });
  }
  status(sel: Selection, signal?: AbortSignal): Promise<Status> {
    return this.json('GET', '/api/v1/status', { params: selectionParams(sel), signal });
  }
  fields(signal?: AbortSignal): Promise<Field[]> {
    return this.json('GET', '/api/v1/fields', { signal });
  }

  // --- saved views, positions, links
  views(): Promise<SavedView[]> {
    return this.json<unknown>('GET', '/api/v1/views').then(listOf('views'));
  }
  createView(v: Omit<SavedView, 'id'>): Promise<SavedView> {
    return this.json('POST', '/api/v1/views', { body: v });
  }
  updateView(v: SavedView): Promise<SavedView> {
    return this.json('PUT', `/api/v1/views/${encodeURIComponent(v.id)}`, { body: v });
  }
  deleteView(id: string): Promise<void> {
    return this.json('DELETE', `/api/v1/views/${encodeURIComponent(id)}`);
  }
  positions(scope: Scope, signal?: AbortSignal): Promise<Record<string, Position>> {
    return this.json<{ positions: Record<string, Position> | null }>('GET', '/api/v1/positions', {
      params: { scope },
      signal,
    }).then((r) => r?.positions ?? {});
  }
  savePositions(scope: Scope, positions: Record<string, Position>): Promise<void> {
    return this.json('PUT', '/api/v1/positions', { params: { scope }, body: { positions } });
  }
  links(): Promise<PublicLink[]> {
    return this.json<unknown>('GET', '/api/v1/links').then(listOf('links'));
  }
  createLink(viewId: string, expiresIn: string, password?: string): Promise<PublicLink> {
    return this.json('POST', '/api/v1/links', {
      body: { view_id: viewId, expires_in: expiresIn, ...(password ? { password } : {}) },
    });
  }
  deleteLink(id: string): Promise<void> {
    return this.json('DELETE', `/api/v1/links/${encodeURIComponent(id)}`);
  }

  // --- admin
  users(): Promise<User[]> {
    return this.json<unknown>('GET', '/api/v1/admin/users').then(listOf('users'));
  }
  createUser(u: User & { password: string }): Promise<User> {
    return this.json('POST', '/api/v1/admin/users', { body: u });
  }
  updateUser(username: string, u: Partial<User> & { password?: string }): Promise<User> {
    return this.json('PUT', `/api/v1/admin/users/${encodeURIComponent(username)}`, { body: u });
  }
  deleteUser(username: string): Promise<void> {
    return this.json('DELETE', `/api/v1/admin/users/${encodeURIComponent(username)}`);
  }
  teams(): Promise<Team[]> {
    return this.json<unknown>('GET', '/api/v1/admin/teams').then(listOf('teams'));
  }
  createTeam(t: Team): Promise<Team> {
    return this.json('POST', '/api/v1/admin/teams', { body: t });
  }
  updateTeam(t: Team): Promise<Team> {
    return this.json('PUT', `/api/v1/admin/teams/${encodeURIComponent(t.name)}`, { body: t });
  }
  deleteTeam(name: string): Promise<void> {
    return this.json('DELETE', `/api/v1/admin/teams/${encodeURIComponent(name)}`);
  }
  agents(): Promise<AgentInfo[]> {
    return this.json<unknown>('GET', '/api/v1/admin/agents').then(listOf('agents'));
  }
  serviceAccounts(): Promise<ServiceAccount[]> {
    return this.json<unknown>(
      'GET',
      '/api/v1/admin/service-accounts',
    ).then(listOf('service_accounts'));
  }
  createServiceAccount(s: ServiceAccount): Promise<ServiceAccount> {
    return this.json('POST', '/api/v1/admin/service-accounts', { body: s });
  }
  deleteServiceAccount(name: string): Promise<void> {
    return this.json('DELETE', `/api/v1/admin/service-accounts/${encodeURIComponent(name)}`);
  }
}

/** Lists come back as {"items": [...]}; also accept bare arrays, {key: [...]} and null. */
export function listOf<T>(key: string): (r: unknown) => T[] {
  return (r) => {
    if (Array.isArray(r)) return r as T[];
    if (r && typeof r === 'object') {
      const o = r as Record<string, unknown>;
      if (Array.isArray(o.items)) return o.items as T[];
      if (Array.isArray(o[key])) return o[key] as T[];
    }
    return [];
  };
}
