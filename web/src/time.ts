// Time handling. Every instant is an integer number of microseconds since the Unix
// epoch (UTC): the lake stores TIMESTAMP(MICROS) and the API speaks RFC 3339 with
// microseconds, which a JS Date (milliseconds) cannot hold. 2^53 µs is year 2255.

export const US = 1;
export const MS = 1000;
export const SECOND = 1_000_000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** Narrowest window the UI zooms to (time travel "down to milliseconds"). */
export const MIN_SPAN = MS;
/** Widest window (a bit over a year). */
export const MAX_SPAN = 400 * DAY;

export interface Window {
  from: number; // µs, inclusive
  to: number; // µs, exclusive
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:?\d{2})$/;

/** Parses an RFC 3339 timestamp (fraction up to nanoseconds, any offset) into µs. */
export function parseTs(s: string): number {
  const m = RFC3339.exec(s.trim());
  if (!m) throw new Error(`invalid timestamp ${JSON.stringify(s)}`);
  const [, y, mo, d, h, mi, se, frac = '', off] = m;
  let ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, +se);
  const check = new Date(ms);
  if (
    Number.isNaN(ms) ||
    check.getUTCMonth() !== +mo - 1 ||
    check.getUTCDate() !== +d ||
    check.getUTCHours() !== +h ||
    check.getUTCMinutes() !== +mi
  ) {
    throw new Error(`invalid timestamp ${JSON.stringify(s)}`);
  }
  if (off !== 'Z' && off !== 'z') {
    const sign = off[0] === '-' ? -1 : 1;
    const digits = off.slice(1).replace(':', '');
    ms -= sign * (+digits.slice(0, 2) * 60 + +digits.slice(2, 4)) * 60_000;
  }
  const micros = frac ? Math.floor(+(frac + '000000').slice(0, 6)) : 0;
  return ms * 1000 + micros;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** Formats µs as RFC 3339 UTC with exactly six fraction digits. */
export function formatTs(us: number): string {
  const ms = Math.floor(us / 1000);
  const micros = us - ms * 1000;
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) throw new Error(`invalid time ${us}`);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
    `.${pad(d.getUTCMilliseconds(), 3)}${pad(micros, 3)}Z`
  );
}

/** Human form for tables: "2024-01-02 03:04:05.678901" (UTC). */
export function formatTsShort(us: number): string {
  return formatTs(us).replace('T', ' ').replace('Z', '');
}

const UNIT: Record<string, number> = {
  us: US,
  'µs': US,
  ms: MS,
  s: SECOND,
  m: MINUTE,
  h: HOUR,
  d: DAY,
  w: 7 * DAY,
};

/** Parses "250ms", "1.5s", "1h30m", "7d" into µs. */
export function parseDuration(s: string): number {
  const str = s.trim();
  if (!str) throw new Error('empty duration');
  const re = /(\d+(?:\.\d+)?)(us|µs|ms|s|m|h|d|w)/gy;
  let total = 0;
  let pos = 0;
  while (pos < str.length) {
    re.lastIndex = pos;
    const m = re.exec(str);
    if (!m) throw new Error(`invalid duration ${JSON.stringify(s)}`);
    total += parseFloat(m[1]) * UNIT[m[2]];
    pos = re.lastIndex;
  }
  return Math.round(total);
}

/** Short human duration: 12µs, 3.4ms, 1.25s, 2m5s, 3h, 2d4h. */
export function formatDuration(us: number): string {
  if (!Number.isFinite(us)) return '–';
  const neg = us < 0;
  let v = Math.abs(us);
  let out: string;
  if (v < MS) out = `${Math.round(v)}µs`;
  else if (v < SECOND) out = `${trim(v / MS)}ms`;
  else if (v < MINUTE) out = `${trim(v / SECOND)}s`;
  else if (v < HOUR) {
    const m = Math.floor(v / MINUTE);
    const sec = Math.round((v - m * MINUTE) / SECOND);
    out = sec ? `${m}m${sec}s` : `${m}m`;
  } else if (v < DAY) {
    const h = Math.floor(v / HOUR);
    const m = Math.round((v - h * HOUR) / MINUTE);
    out = m ? `${h}h${m}m` : `${h}h`;
  } else {
    const d = Math.floor(v / DAY);
    const h = Math.round((v - d * DAY) / HOUR);
    out = h ? `${d}d${h}h` : `${d}d`;
  }
  return neg ? `-${out}` : out;
  function trim(x: number): string {
    return x >= 100 ? x.toFixed(0) : x >= 10 ? stripZeros(x.toFixed(1)) : stripZeros(x.toFixed(2));
  }
}

function stripZeros(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** Relative windows offered in the picker ("last 1h"). */
export const PRESETS = ['5m', '15m', '1h', '6h', '24h', '7d', '30d'];

/** The window [now-rel, now). */
export function relativeWindow(rel: string, nowUs: number): Window {
  const span = parseDuration(rel);
  return { from: nowUs - span, to: nowUs };
}

export function nowUs(): number {
  return Date.now() * 1000;
}

function clampSpan(span: number): number {
  return Math.min(MAX_SPAN, Math.max(MIN_SPAN, span));
}

/**
 * Zooms by factor (<1 zooms in) keeping the instant `at` at the same relative place.
 * The span is clamped to [MIN_SPAN, MAX_SPAN].
 */
export function zoom(w: Window, factor: number, at = (w.from + w.to) / 2): Window {
  const span = w.to - w.from;
  const ns = clampSpan(span * factor);
  const rel = span > 0 ? (at - w.from) / span : 0.5;
  const from = Math.round(at - rel * ns);
  return { from, to: from + Math.round(ns) };
}

/** Moves the window by a fraction of its span (negative = back in time). */
export function pan(w: Window, fraction: number): Window {
  const d = Math.round((w.to - w.from) * fraction);
  return { from: w.from + d, to: w.to + d };
}

/** A brushed range (in µs, any order) becomes the new window, at least MIN_SPAN wide. */
export function brush(a: number, b: number): Window {
  let from = Math.round(Math.min(a, b));
  let to = Math.round(Math.max(a, b));
  if (to - from < MIN_SPAN) {
    const mid = (from + to) / 2;
    from = Math.round(mid - MIN_SPAN / 2);
    to = from + MIN_SPAN;
  }
  return { from, to };
}

/** Candidate steps for ticks and buckets, 1µs … 30d. */
export const STEPS: number[] = [
  1, 2, 5, 10, 20, 50, 100, 200, 500,
  MS, 2 * MS, 5 * MS, 10 * MS, 20 * MS, 50 * MS, 100 * MS, 200 * MS, 500 * MS,
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY,
];

/** The smallest step from STEPS that cuts span into at most maxCount pieces. */
export function niceStep(span: number, maxCount: number): number {
  const raw = span / Math.max(1, maxCount);
  for (const s of STEPS) if (s >= raw) return s;
  return STEPS[STEPS.length - 1];
}

/** Tick instants (multiples of a nice step, UTC-aligned) inside [from, to]. */
export function ticks(from: number, to: number, maxCount: number): { step: number; values: number[] } {
  const step = niceStep(to - from, maxCount);
  const values: number[] = [];
  const first = Math.ceil(from / step) * step;
  for (let t = first; t <= to && values.length < 1000; t += step) values.push(t);
  return { step, values };
}

/** Label of a tick, as precise as the step needs. */
export function formatTick(us: number, step: number): string {
  const s = formatTs(us); // 2024-01-02T03:04:05.678901Z
  const date = s.slice(5, 10);
  const hm = s.slice(11, 16);
  const hms = s.slice(11, 19);
  if (step >= DAY) return date;
  if (step >= MINUTE) return hm === '00:00' ? date : hm;
  if (step >= SECOND) return hms;
  if (step >= MS) return s.slice(17, 23); // ss.mmm
  return s.slice(17, 26); // ss.mmmuuu
}

/** Label of a window for the toolbar. */
export function formatWindow(w: Window): string {
  const a = formatTsShort(w.from);
  const b = formatTsShort(w.to);
  // Drop the common date prefix from the end instant.
  const sameDay = a.slice(0, 10) === b.slice(0, 10);
  return `${a} → ${sameDay ? b.slice(11) : b}`;
}

/** A window around a set of instants, padded by 5% (at least 1 s) on each side. */
export function windowAround(minUs: number, maxUs: number): Window {
  const span = Math.max(0, maxUs - minUs);
  const padUs = Math.max(SECOND, Math.round(span * 0.05));
  return { from: minUs - padUs, to: maxUs + padUs + 1 };
}
