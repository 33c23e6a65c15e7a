// Filter-language helpers for the filter bar: a tolerant tokenizer (the server
// owns the real parser and reports errors with `pos`), completion of field names,
// operators and values at the cursor, and building clauses from clicks on the map.

import type { Field, Summary } from './api';
import { parseTs, type Window } from './time';

export type TokKind = 'word' | 'string' | 'op' | 'lparen' | 'rparen' | 'comma';

export interface Token {
  kind: TokKind;
  text: string;
  start: number; // byte offset == JS index for ASCII; see byteToIndex
  end: number;
  closed?: boolean; // strings: false when the closing quote is missing
}

const OPS = ['!=', '<=', '>=', '=', '<', '>', '~'];
export const KEYWORDS = ['and', 'or', 'not', 'in'];

/** Splits q into tokens; never throws (unterminated strings run to the end). */
export function tokenize(q: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === ',') {
      out.push({ kind: c === '(' ? 'lparen' : c === ')' ? 'rparen' : 'comma', text: c, start: i, end: i + 1 });
      i++;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let closed = false;
      while (j < q.length) {
        if (q[j] === '\\') {
          j += 2;
          continue;
        }
        if (q[j] === '"') {
          closed = true;
          j++;
          break;
        }
        j++;
      }
      j = Math.min(j, q.length);
      out.push({ kind: 'string', text: q.slice(i, j), start: i, end: j, closed });
      i = j;
      continue;
    }
    const op = OPS.find((o) => q.startsWith(o, i));
    if (op) {
      out.push({ kind: 'op', text: op, start: i, end: i + op.length });
      i += op.length;
      continue;
    }
    let j = i;
    while (j < q.length && !/[\s()",=<>!~]/.test(q[j])) j++;
    if (j === i) j = i + 1; // a lone '!' or similar
    out.push({ kind: 'word', text: q.slice(i, j), start: i, end: j });
    i = j;
  }
  return out;
}

export type CompletionKind = 'field' | 'operator' | 'value' | 'keyword';

export interface CompletionContext {
  kind: CompletionKind;
  /** The partial text being replaced (may be empty). */
  prefix: string;
  start: number;
  end: number;
  /** For operator/value contexts: the field on the left. */
  field?: string;
}

function isKeyword(t: Token | undefined, kw: string): boolean {
  return !!t && t.kind === 'word' && t.text.toLowerCase() === kw;
}

/** What can be typed at the cursor, and which text a completion replaces. */
export function completionContext(q: string, cursor: number): CompletionContext {
  const toks = tokenize(q);
  // The token under the cursor (cursor inside or at its end) is the prefix.
  let cur: Token | undefined;
  const before: Token[] = [];
  for (const t of toks) {
    if (t.end < cursor || (t.end === cursor && t.kind !== 'word' && t.kind !== 'string')) {
      before.push(t);
    } else if (t.start < cursor && cursor <= t.end) {
      cur = t;
    } else if (t.end === cursor) {
      cur = t;
    }
  }
  const start = cur ? cur.start : cursor;
  const end = cur ? cur.end : cursor;
  const prefix = cur ? q.slice(cur.start, cursor) : '';
  const prev = before[before.length - 1];
  const prev2 = before[before.length - 2];

  // Inside "in ( a, b, |": values of the field before `in`.
  const inList = openInList(before);
  if (inList) return { kind: 'value', prefix, start, end, field: inList };

  if (!prev || prev.kind === 'lparen' || isKeyword(prev, 'and') || isKeyword(prev, 'or') || isKeyword(prev, 'not')) {
    return { kind: 'field', prefix, start, end };
  }
  if (prev.kind === 'op') {
    return { kind: 'value', prefix, start, end, field: prev2?.kind === 'word' ? prev2.text : undefined };
  }
  if (prev.kind === 'word' && (!prev2 || prev2.kind === 'lparen' || isKeyword(prev2, 'and') || isKeyword(prev2, 'or') || isKeyword(prev2, 'not'))) {
    // "field |" → an operator (or `in`).
    return { kind: 'operator', prefix, start, end, field: prev.text };
  }
  return { kind: 'keyword', prefix, start, end };
}

/** If the cursor is inside an unclosed `field in (` list, the field name. */
function openInList(before: Token[]): string | undefined {
  let depth = 0;
  for (let i = before.length - 1; i >= 0; i--) {
    const t = before[i];
    if (t.kind === 'rparen') depth++;
    else if (t.kind === 'lparen') {
      if (depth > 0) {
        depth--;
        continue;
      }
      const kw = before[i - 1];
      const field = before[i - 2];
      if (isKeyword(kw, 'in') && field?.kind === 'word') return field.text;
      return undefined;
    }
  }
  return undefined;
}

export interface Suggestion {
  label: string;
  insert: string;
  detail?: string;
}

const OPS_BY_TYPE: Record<Field['type'], string[]> = {
  string: ['=', '!=', '~', 'in'],
  int: ['=', '!=', '<', '<=', '>', '>=', 'in'],
  duration: ['>', '>=', '<', '<=', '=', '!='],
  time: ['>', '>=', '<', '<='],
  bool: ['=', '!='],
};

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT'];

/**
 * Suggestions for a context. `values` may hold known values per field (e.g. names
 * seen on the map) to propose after an operator.
 */
export function suggest(
  ctx: CompletionContext,
  fields: Field[],
  values: Record<string, string[]> = {},
  max = 12,
): Suggestion[] {
  const p = ctx.prefix.toLowerCase().replace(/^"/, '');
  const field = fields.find((f) => f.name === ctx.field);
  let out: Suggestion[] = [];
  switch (ctx.kind) {
    case 'field':
      out = fields
        .filter((f) => f.name.toLowerCase().startsWith(p))
        .map((f) => ({ label: f.name, insert: f.name + ' ', detail: `${f.type} — ${f.description}` }));
      if ('not'.startsWith(p) && p) out.push({ label: 'not', insert: 'not ', detail: 'negation' });
      break;
    case 'operator': {
      const ops = field ? OPS_BY_TYPE[field.type] : ['=', '!=', '~', '<', '>', 'in'];
      out = ops
        .filter((o) => o.startsWith(p))
        .map((o) => ({ label: o, insert: o === 'in' ? 'in (' : o + ' ', detail: opDetail(o) }));
      break;
    }
    case 'value': {
      let vals: string[] = [];
      if (field?.type === 'bool') vals = ['true', 'false'];
      else if (ctx.field === 'method') vals = METHODS;
      else if (ctx.field && values[ctx.field]) vals = values[ctx.field];
      out = uniq(vals)
        .filter((v) => v.toLowerCase().startsWith(p))
        .map((v) => {
          const ins = field?.type === 'bool' || field?.type === 'int' || ctx.field === 'method' ? v : quote(v);
          return { label: v, insert: ins + ' ' };
        });
      break;
    }
    case 'keyword':
      out = ['and', 'or']
        .filter((k) => k.startsWith(p))
        .map((k) => ({ label: k, insert: k + ' ' }));
      break;
  }
  return out.slice(0, max);
}

function uniq(a: string[]): string[] {
  return [...new Set(a)];
}

function opDetail(o: string): string {
  switch (o) {
    case '~':
      return 'matches regular expression (RE2)';
    case 'in':
      return 'one of a list: in (a, b)';
    default:
      return 'comparison';
  }
}

/** Replaces the context's text by the suggestion; returns the new q and cursor. */
export function applySuggestion(q: string, ctx: CompletionContext, s: Suggestion): { q: string; cursor: number } {
  const head = q.slice(0, ctx.start);
  let tail = q.slice(ctx.end);
  let insert = s.insert;
  if (insert.endsWith(' ') && tail.startsWith(' ')) insert = insert.slice(0, -1);
  const nq = head + insert + tail;
  return { q: nq, cursor: head.length + insert.length + (insert !== s.insert ? 1 : 0) };
}

/** A string literal for the filter language. */
export function quote(v: string): string {
  return '"' + v.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/** q AND clause, parenthesising q when it has a top-level `or`. */
export function andClause(q: string, clause: string): string {
  const t = q.trim();
  if (!t) return clause;
  if (t === clause || t.endsWith(`and ${clause}`)) return t;
  const hasOr = topLevelOr(t);
  return `${hasOr ? `(${t})` : t} and ${clause}`;
}

function topLevelOr(q: string): boolean {
  let depth = 0;
  for (const tok of tokenize(q)) {
    if (tok.kind === 'lparen') depth++;
    else if (tok.kind === 'rparen') depth--;
    else if (depth === 0 && isKeyword(tok, 'or')) return true;
  }
  return false;
}

/** The clause selecting everything a map node takes part in (node id = ip). */
export function nodeClause(ip: string): string {
  return `(client_ip = ${quote(ip)} or server_ip = ${quote(ip)})`;
}

/** The clause selecting a map edge (client → server). */
export function edgeClause(source: string, target: string): string {
  return `client_ip = ${quote(source)} and server_ip = ${quote(target)}`;
}

/**
 * The server reports `pos` as a 0-based byte offset in q (UTF-8); converts it to a
 * JS string index.
 */
export function byteToIndex(q: string, pos: number): number {
  let bytes = 0;
  let i = 0;
  for (const ch of q) {
    if (bytes >= pos) return i;
    bytes += new TextEncoder().encode(ch).length;
    i += ch.length;
  }
  return q.length;
}

/**
 * The selection of exactly one exchange (for its HAR export): its id when the
 * server offers an `id` field, else its client, server, method and path, in a
 * window from its first to its last packet.
 */
export function exchangeSelection(
  d: Pick<Summary, 'id' | 'ts' | 'ts_end' | 'client_ip' | 'server_ip' | 'path' | 'method'>,
  fields: Field[],
): { q: string; window: Window } {
  const names = new Set(fields.map((f) => f.name));
  const from = parseTs(d.ts);
  const to = Math.max(d.ts_end ? parseTs(d.ts_end) : from, from) + 1;
  let q: string;
  if (names.has('id')) q = `id = ${quote(d.id)}`;
  else {
    q = edgeClause(d.client_ip, d.server_ip);
    if (names.has('method') && d.method) q += ` and method = ${quote(d.method)}`;
    if (names.has('path') && d.path) q += ` and path = ${quote(d.path)}`;
  }
  return { q, window: { from, to } };
}
