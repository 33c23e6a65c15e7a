import { describe, expect, it } from 'vitest';
import { Api, ApiError, buildUrl, errorFrom, listOf } from '../src/api';
import { parseConfig } from '../src/config';
import { exploreFromParams, exploreToParams, formatHash, parseHash } from '../src/route';
import { parseTs } from '../src/time';

interface Seen {
  url: string;
  init: RequestInit;
}

function fakeFetch(status: number, body: string, seen: Seen[], contentType = 'application/json'): typeof fetch {
  return (async (url: string, init: RequestInit) => {
    seen.push({ url, init });
    return new Response(status === 204 ? null : body, { status, headers: { 'Content-Type': contentType } });
  }) as unknown as typeof fetch;
}

const sel = { window: { from: parseTs('2024-01-02T03:00:00Z'), to: parseTs('2024-01-02T04:00:00.5Z') }, q: 'status >= 500' };

describe('buildUrl', () => {
  it('joins base and path and skips empty params', () => {
    expect(buildUrl('https://api.example.com/', '/api/v1/map', { q: '', a: undefined, b: 0, c: 'x y' })).toBe(
      'https://api.example.com/api/v1/map?b=0&c=x+y',
    );
    expect(buildUrl('', '/api/v1/fields')).toBe('/api/v1/fields');
  });
});

describe('Api', () => {
  it('sends the selection as RFC 3339 from/to and q, with the bearer token', async () => {
    const seen: Seen[] = [];
    const api = new Api({ base: 'http://h:1', token: () => 'tok', fetch: fakeFetch(200, '{"nodes":[],"edges":[]}', seen) });
    await api.map(sel);
    const u = new URL(seen[0].url);
    expect(u.pathname).toBe('/api/v1/map');
    expect(u.searchParams.get('from')).toBe('2024-01-02T03:00:00.000000Z');
    expect(u.searchParams.get('to')).toBe('2024-01-02T04:00:00.500000Z');
    expect(u.searchParams.get('q')).toBe('status >= 500');
    expect((seen[0].init.headers as Record<string, string>).Authorization).toBe('Bearer tok');
  });
  it('passes paging and sort to /communications', async () => {
    const seen: Seen[] = [];
    const api = new Api({ base: '', token: () => null, fetch: fakeFetch(200, '{"items":[],"next":""}', seen) });
    await api.communications(sel, { limit: 50, cursor: 'abc', sort: '-duration_us' });
    const u = new URL(seen[0].url, 'http://x');
    expect(u.searchParams.get('limit')).toBe('50');
    expect(u.searchParams.get('cursor')).toBe('abc');
    expect(u.searchParams.get('sort')).toBe('-duration_us');
    expect((seen[0].init.headers as Record<string, string>).Authorization).toBeUndefined();
  });
  it('turns error bodies into ApiError with code and pos', async () => {
    const api = new Api({
      base: '',
      token: () => 't',
      fetch: fakeFetch(400, '{"error":"unknown field \\"hots\\"","code":"bad_request","pos":0}', []),
    });
    const e = await api.timeline(sel).catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toMatchObject({ status: 400, code: 'bad_request', pos: 0, message: 'unknown field "hots"' });
  });
  it('calls onUnauthorized on 401 with a token, not on a failed login', async () => {
    let called = 0;
    const api = new Api({ base: '', token: () => 't', onUnauthorized: () => called++, fetch: fakeFetch(401, '{"error":"token expired","code":"unauthorized"}', []) });
    await expect(api.me()).rejects.toThrow('token expired');
    expect(called).toBe(1);
    await expect(api.login('a', 'b')).rejects.toThrow();
    expect(called).toBe(1);
  });
  it('reports network failures as code network', async () => {
    const api = new Api({ base: '', token: () => null, fetch: (async () => { throw new TypeError('Failed to fetch'); }) as unknown as typeof fetch });
    const e = await api.fields().catch((x) => x);
    expect(e).toMatchObject({ status: 0, code: 'network' });
  });
  it('posts JSON bodies', async () => {
    const seen: Seen[] = [];
    const api = new Api({ base: '', token: () => 't', fetch: fakeFetch(200, '{}', seen) });
    await api.savePositions('team', { '10.0.0.1': { x: 1, y: 2 } });
    expect(seen[0].init.method).toBe('PUT');
    expect(new URL(seen[0].url, 'http://x').searchParams.get('scope')).toBe('team');
    expect(JSON.parse(seen[0].init.body as string)).toEqual({ positions: { '10.0.0.1': { x: 1, y: 2 } } });
  });
  it('passes the exchange ts as the lookup hint of detail and pcap', async () => {
    const seen: Seen[] = [];
    const api = new Api({ base: 'http://h:1', token: () => 't', fetch: fakeFetch(200, '{}', seen, 'application/octet-stream') });
    const ts = '2024-05-01T12:17:59.995801Z';
    await api.communication('h/1 x', ts);
    await api.communication('h/1 x');
    await api.pcap('h2', ts);
    await api.pcap('h2', '');
    const urls = seen.map((s) => new URL(s.url));
    expect(urls[0].pathname).toBe('/api/v1/communications/h%2F1%20x');
    expect(urls[0].searchParams.get('ts')).toBe(ts);
    expect(urls[0].search).toBe('?ts=2024-05-01T12%3A17%3A59.995801Z');
    expect(urls[1].search).toBe('');
    expect(urls[2].pathname).toBe('/api/v1/communications/h2/pcap');
    expect(urls[2].searchParams.get('ts')).toBe(ts);
    expect(urls[3].search).toBe('');
  });
  it('keeps an offset ts intact (a + must not become a space)', async () => {
    const seen: Seen[] = [];
    const api = new Api({ base: 'http://h:1', token: () => 't', fetch: fakeFetch(200, '{}', seen) });
    await api.communication('x', '2024-05-01T14:17:59.995801+02:00');
    expect(new URL(seen[0].url).searchParams.get('ts')).toBe('2024-05-01T14:17:59.995801+02:00');
  });
  it('accepts empty 204 answers', async () => {
    const api = new Api({ base: '', token: () => 't', fetch: fakeFetch(204, '', []) });
    await expect(api.deleteView('v1')).resolves.toBeUndefined();
  });
});

describe('errorFrom', () => {
  it('falls back to the text of non-JSON bodies', () => {
    expect(errorFrom(502, 'Bad Gateway', '<html>upstream down</html>')).toMatchObject({ code: 'internal', message: '<html>upstream down</html>' });
    expect(errorFrom(404, 'Not Found', '')).toMatchObject({ code: 'not_found', message: 'Not Found' });
  });
});

describe('listOf and config', () => {
  it('accepts bare arrays and wrappers', () => {
    expect(listOf<number>('views')([1, 2])).toEqual([1, 2]);
    expect(listOf<number>('views')({ views: [3] })).toEqual([3]);
    expect(listOf<number>('views')(null)).toEqual([]);
    expect(listOf<number>('views')({ items: [4] })).toEqual([4]);
  });
  it('parses config.json', () => {
    expect(parseConfig({ api_base: 'https://api.example.com/' })).toEqual({ api_base: 'https://api.example.com' });
    expect(parseConfig({})).toEqual({ api_base: '' });
    expect(parseConfig(null)).toEqual({ api_base: '' });
    expect(() => parseConfig({ api_base: 'ftp://x' })).toThrow(/api_base/);
  });
});

describe('explore route', () => {
  const now = parseTs('2024-05-01T13:00:00Z');
  it('keeps the selected exchange ts (the detail lookup hint) with the selection', () => {
    const hash = formatHash(['explore'], exploreToParams({ ...exploreFromParams(new URLSearchParams(), now), sel: 'h1', at: '2024-05-01T12:17:59.995801Z', tab: 'detail' }));
    const st = exploreFromParams(parseHash(hash).params, now);
    expect(st.sel).toBe('h1');
    expect(st.at).toBe('2024-05-01T12:17:59.995801Z');
  });
  it('drops the ts when nothing is selected', () => {
    const p = exploreToParams({ ...exploreFromParams(new URLSearchParams(), now), sel: '', at: '2024-05-01T12:17:59.995801Z' });
    expect(p.at).toBeUndefined();
    expect(exploreFromParams(new URLSearchParams('at=2024-05-01T12:17:59Z'), now).at).toBeUndefined();
  });
});
