import { describe, expect, it } from 'vitest';
import type { Field } from '../src/api';
import {
  andClause, applySuggestion, byteToIndex, completionContext, edgeClause, exchangeSelection, nodeClause, quote, suggest, tokenize,
} from '../src/filter';
import { parseTs } from '../src/time';

const fields: Field[] = [
  { name: 'host', type: 'string', description: 'Host header' },
  { name: 'path', type: 'string', description: 'request path' },
  { name: 'method', type: 'string', description: 'HTTP method' },
  { name: 'status', type: 'int', description: 'status code' },
  { name: 'server', type: 'string', description: 'server ip or name' },
  { name: 'server_ip', type: 'string', description: 'server ip' },
  { name: 'tls', type: 'bool', description: 'TLS' },
  { name: 'duration', type: 'duration', description: 'duration' },
];

describe('tokenize', () => {
  it('splits operators, strings, parens and words', () => {
    const t = tokenize('host ~ "api\\." and status>=500 and not method in (GET, HEAD)');
    expect(t.map((x) => x.text)).toEqual([
      'host', '~', '"api\\."', 'and', 'status', '>=', '500', 'and', 'not', 'method', 'in', '(', 'GET', ',', 'HEAD', ')',
    ]);
    expect(t[2]).toMatchObject({ kind: 'string', closed: true, start: 7, end: 14 });
  });
  it('tolerates an unterminated string', () => {
    const t = tokenize('host = "abc');
    expect(t[2]).toMatchObject({ kind: 'string', text: '"abc', closed: false });
  });
});

describe('completion context', () => {
  const at = (q: string) => completionContext(q, q.length);
  it('field at start and after and/or/not/(', () => {
    expect(at('')).toMatchObject({ kind: 'field', prefix: '' });
    expect(at('ho')).toMatchObject({ kind: 'field', prefix: 'ho', start: 0, end: 2 });
    expect(at('status = 500 and se')).toMatchObject({ kind: 'field', prefix: 'se', start: 17 });
    expect(at('not (me')).toMatchObject({ kind: 'field', prefix: 'me' });
  });
  it('operator after a field', () => {
    expect(at('status ')).toMatchObject({ kind: 'operator', field: 'status', prefix: '' });
    expect(at('status = 1 and host ')).toMatchObject({ kind: 'operator', field: 'host' });
  });
  it('value after an operator and inside in (...)', () => {
    expect(at('tls = ')).toMatchObject({ kind: 'value', field: 'tls' });
    expect(at('method in (GET, P')).toMatchObject({ kind: 'value', field: 'method', prefix: 'P' });
    expect(at('host = "ap')).toMatchObject({ kind: 'value', field: 'host', prefix: '"ap' });
  });
  it('keyword after a complete comparison', () => {
    expect(at('status = 500 ')).toMatchObject({ kind: 'keyword' });
    expect(at('status = 500 a')).toMatchObject({ kind: 'keyword', prefix: 'a' });
  });
  it('uses the cursor, not the end of the text', () => {
    const q = 'ho = "x" and status = 1';
    expect(completionContext(q, 2)).toMatchObject({ kind: 'field', prefix: 'ho', start: 0, end: 2 });
  });
});

describe('suggestions', () => {
  it('completes field names from /fields by prefix', () => {
    const s = suggest(completionContext('ser', 3), fields);
    expect(s.map((x) => x.label)).toEqual(['server', 'server_ip']);
    expect(s[0].detail).toContain('server ip or name');
  });
  it('offers operators that fit the field type', () => {
    expect(suggest(completionContext('tls ', 4), fields).map((x) => x.label)).toEqual(['=', '!=']);
    expect(suggest(completionContext('status ', 7), fields).map((x) => x.label)).toContain('>=');
    expect(suggest(completionContext('host ', 5), fields).map((x) => x.label)).toContain('~');
  });
  it('offers values: booleans, methods, known names (quoted)', () => {
    expect(suggest(completionContext('tls = ', 6), fields).map((x) => x.insert)).toEqual(['true ', 'false ']);
    expect(suggest(completionContext('method = P', 10), fields).map((x) => x.label)).toEqual(['POST', 'PUT', 'PATCH']);
    const s = suggest(completionContext('host = ', 7), fields, { host: ['api.example.com'] });
    expect(s[0].insert).toBe('"api.example.com" ');
  });
  it('applies a suggestion in place', () => {
    const q = 'status = 500 and ser';
    const ctx = completionContext(q, q.length);
    const r = applySuggestion(q, ctx, suggest(ctx, fields)[0]);
    expect(r.q).toBe('status = 500 and server ');
    expect(r.cursor).toBe(r.q.length);
    const q2 = 'ho = "x"';
    const c2 = completionContext(q2, 2);
    const r2 = applySuggestion(q2, c2, { label: 'host', insert: 'host ' });
    expect(r2.q).toBe('host = "x"');
  });
});

describe('clauses', () => {
  it('quotes and escapes', () => {
    expect(quote('a"b\\c')).toBe('"a\\"b\\\\c"');
  });
  it('builds node and edge clauses (IPv6 safe)', () => {
    expect(nodeClause('10.0.0.1')).toBe('(client_ip = "10.0.0.1" or server_ip = "10.0.0.1")');
    expect(edgeClause('fe80::1', '2001:db8::2')).toBe('client_ip = "fe80::1" and server_ip = "2001:db8::2"');
  });
  it('ands clauses, parenthesising a top-level or', () => {
    expect(andClause('', 'status = 500')).toBe('status = 500');
    expect(andClause('host = a', 'status = 500')).toBe('host = a and status = 500');
    expect(andClause('host = a or host = b', 'status = 500')).toBe('(host = a or host = b) and status = 500');
    expect(andClause('(a = 1 or b = 2) and c = 3', 'd = 4')).toBe('(a = 1 or b = 2) and c = 3 and d = 4');
    expect(andClause('x = 1 and d = 4', 'd = 4')).toBe('x = 1 and d = 4');
  });
  it('converts byte offsets to string indexes', () => {
    expect(byteToIndex('host = x', 5)).toBe(5);
    expect(byteToIndex('path = "é" and', 11)).toBe(10); // é is 2 bytes
  });
});

describe('exchangeSelection', () => {
  const d = { id: 'abc"1', ts: '2024-01-01T00:00:00.000001Z', ts_end: '2024-01-01T00:00:00.5Z', client_ip: '10.0.0.1', server_ip: '10.0.0.2', method: 'GET', path: '/x' };
  it('selects by id when the server has the field, over the exchange\'s time', () => {
    const s = exchangeSelection(d, [...fields, { name: 'id', type: 'string', description: '' }]);
    expect(s.q).toBe('id = "abc\\"1"');
    expect(s.window).toEqual({ from: parseTs(d.ts), to: parseTs(d.ts_end) + 1 });
  });
  it('falls back to client, server, method and path', () => {
    expect(exchangeSelection(d, fields).q).toBe('client_ip = "10.0.0.1" and server_ip = "10.0.0.2" and method = "GET" and path = "/x"');
  });
});
