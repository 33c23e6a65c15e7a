// Sequence-diagram layout: participants become columns in order of first
// appearance, calls become rows in time order (request arrow from caller to
// callee). Pure geometry; the view renders it as SVG.

import type { Sequence } from './api';
import { parseTs } from './time';

export interface SeqParticipant {
  id: string;
  name: string;
  ip: string;
  x: number; // centre of the lifeline
  width: number; // header box width
}

export interface SeqCall {
  id: string;
  index: number;
  ts: number; // µs
  y: number;
  x1: number;
  x2: number;
  self: boolean;
  label: string;
  status: number;
  error: boolean | string;
  duration_us: number;
  offset_us: number; // since the first call
}

export interface SeqLayout {
  width: number;
  height: number;
  headerHeight: number;
  participants: SeqParticipant[];
  calls: SeqCall[];
}

export interface SeqOptions {
  colMin: number;
  charWidth: number;
  rowHeight: number;
  headerHeight: number;
  marginX: number;
  gutter: number; // left column with time offsets
}

export const defaultSeqOptions: SeqOptions = {
  colMin: 150,
  charWidth: 7,
  rowHeight: 34,
  headerHeight: 40,
  marginX: 16,
  gutter: 90,
};

export function layoutSequence(seq: Sequence, opt: SeqOptions = defaultSeqOptions): SeqLayout {
  const calls = seq.calls
    .map((c, i) => ({ c, i, ts: parseTs(c.ts) }))
    // Stable time order (the API already sends it; keep it robust).
    .sort((a, b) => a.ts - b.ts || a.i - b.i);
  const byId = new Map(seq.participants.map((p) => [p.id, p]));
  const order: string[] = [];
  const seen = new Set<string>();
  const add = (id: string) => {
    if (!seen.has(id)) {
      seen.add(id);
      order.push(id);
    }
  };
  for (const { c } of calls) {
    add(c.from);
    add(c.to);
  }
  for (const p of seq.participants) add(p.id);

  const participants: SeqParticipant[] = [];
  let x = opt.gutter + opt.marginX;
  for (const id of order) {
    const p = byId.get(id) ?? { id, name: id, ip: id };
    const name = p.name || p.ip || id;
    const width = Math.max(opt.colMin - 20, Math.min(260, name.length * opt.charWidth + 16));
    const col = Math.max(opt.colMin, width + 20);
    participants.push({ id, name, ip: p.ip, x: x + col / 2, width });
    x += col;
  }
  const xOf = new Map(participants.map((p) => [p.id, p.x]));
  const t0 = calls.length ? calls[0].ts : 0;
  const out: SeqCall[] = calls.map(({ c, ts }, index) => {
    const x1 = xOf.get(c.from) ?? 0;
    const x2 = xOf.get(c.to) ?? 0;
    return {
      id: c.id,
      index,
      ts,
      y: opt.headerHeight + opt.rowHeight * (index + 1),
      x1,
      x2,
      self: c.from === c.to,
      label: c.label,
      status: c.status,
      error: c.error,
      duration_us: c.duration_us,
      offset_us: ts - t0,
    };
  });
  return {
    width: x + opt.marginX,
    height: opt.headerHeight + opt.rowHeight * (out.length + 1) + 10,
    headerHeight: opt.headerHeight,
    participants,
    calls: out,
  };
}

/** Colour class of a call: no response → none, error or 5xx → error, 4xx → warn. */
export function callClass(c: { status: number; error: boolean | string }): 'error' | 'warn' | 'none' | 'ok' {
  if (c.status === 0) return 'none';
  if (c.error || c.status >= 500) return 'error';
  if (c.status >= 400) return 'warn';
  return 'ok';
}
