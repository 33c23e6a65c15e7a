import { describe, expect, it } from 'vitest';
import {
  brush, DAY, formatDuration, formatTick, formatTs, HOUR, MIN_SPAN, MINUTE, MS, niceStep, pan, parseDuration,
  parseTs, relativeWindow, SECOND, ticks, windowAround, zoom,
} from '../src/time';

describe('timestamps', () => {
  it('parses RFC 3339 with microseconds and offsets', () => {
    const base = Date.UTC(2024, 0, 2, 3, 4, 5) * 1000;
    expect(parseTs('2024-01-02T03:04:05Z')).toBe(base);
    expect(parseTs('2024-01-02T03:04:05.123456Z')).toBe(base + 123456);
    expect(parseTs('2024-01-02T03:04:05.1Z')).toBe(base + 100000);
    expect(parseTs('2024-01-02T03:04:05.123456789Z')).toBe(base + 123456); // ns truncated
    expect(parseTs('2024-01-02T05:04:05.000001+02:00')).toBe(base + 1);
    expect(parseTs('2024-01-01T22:04:05-05:00')).toBe(base);
  });
  it('rejects garbage', () => {
    for (const s of ['', 'yesterday', '2024-01-02', '2024-01-02T03:04:05', '2024-13-02T03:04:05Z', '2024-02-30T00:00:00Z', '2024-01-01T24:00:00Z']) {
      expect(() => parseTs(s), s).toThrow();
    }
  });
  it('round-trips through formatTs with six fraction digits', () => {
    for (const s of ['2024-01-02T03:04:05.123456Z', '1999-12-31T23:59:59.999999Z', '2009-11-18T08:00:00.000001Z']) {
      expect(formatTs(parseTs(s))).toBe(s);
    }
    expect(formatTs(0)).toBe('1970-01-01T00:00:00.000000Z');
  });
});

describe('durations', () => {
  it('parses', () => {
    expect(parseDuration('250ms')).toBe(250 * MS);
    expect(parseDuration('1.5s')).toBe(1.5 * SECOND);
    expect(parseDuration('1h30m')).toBe(HOUR + 30 * MINUTE);
    expect(parseDuration('7d')).toBe(7 * DAY);
    expect(parseDuration('10us')).toBe(10);
    expect(() => parseDuration('1x')).toThrow();
    expect(() => parseDuration('')).toThrow();
    expect(() => parseDuration('5m garbage')).toThrow();
  });
  it('formats compactly', () => {
    expect(formatDuration(12)).toBe('12µs');
    expect(formatDuration(3400)).toBe('3.4ms');
    expect(formatDuration(1_250_000)).toBe('1.25s');
    expect(formatDuration(125 * SECOND)).toBe('2m5s');
    expect(formatDuration(3 * HOUR)).toBe('3h');
    expect(formatDuration(2 * DAY + 4 * HOUR)).toBe('2d4h');
  });
});

describe('window math', () => {
  const w = { from: 1_000 * SECOND, to: 1_000 * SECOND + HOUR };
  it('relative windows end now', () => {
    expect(relativeWindow('1h', 5 * HOUR)).toEqual({ from: 4 * HOUR, to: 5 * HOUR });
  });
  it('zooms around a point and keeps it in place', () => {
    const at = w.from + HOUR / 4;
    const z = zoom(w, 0.5, at);
    expect(z.to - z.from).toBe(HOUR / 2);
    expect((at - z.from) / (z.to - z.from)).toBeCloseTo(0.25, 9);
  });
  it('zooms from days down to milliseconds, not below', () => {
    let x = { from: 0, to: 7 * DAY };
    for (let i = 0; i < 60; i++) x = zoom(x, 0.5);
    expect(x.to - x.from).toBe(MIN_SPAN);
    expect(MIN_SPAN).toBe(MS);
  });
  it('pans by a fraction of the span', () => {
    expect(pan(w, -0.5)).toEqual({ from: w.from - HOUR / 2, to: w.to - HOUR / 2 });
  });
  it('brush orders the ends and enforces the minimum span', () => {
    expect(brush(10 * SECOND, 2 * SECOND)).toEqual({ from: 2 * SECOND, to: 10 * SECOND });
    const b = brush(5000, 5100);
    expect(b.to - b.from).toBe(MIN_SPAN);
  });
  it('windowAround pads the data range', () => {
    const x = windowAround(100 * SECOND, 200 * SECOND);
    expect(x.from).toBeLessThan(100 * SECOND);
    expect(x.to).toBeGreaterThan(200 * SECOND);
    expect(windowAround(5, 5).to - windowAround(5, 5).from).toBeGreaterThanOrEqual(2 * SECOND);
  });
});

describe('ticks', () => {
  it('chooses nice steps from µs to days', () => {
    expect(niceStep(HOUR, 6)).toBe(10 * MINUTE);
    expect(niceStep(MS, 5)).toBe(200);
    expect(niceStep(7 * DAY, 7)).toBe(DAY);
  });
  it('aligns ticks on step multiples inside the range', () => {
    const from = parseTs('2024-01-02T03:04:05.5Z');
    const to = from + 10 * SECOND;
    const t = ticks(from, to, 5);
    expect(t.step).toBe(2 * SECOND);
    for (const v of t.values) {
      expect(v % t.step).toBe(0);
      expect(v).toBeGreaterThanOrEqual(from);
      expect(v).toBeLessThanOrEqual(to);
    }
    expect(t.values.length).toBeGreaterThanOrEqual(4);
  });
  it('labels ticks as precisely as the step needs', () => {
    const t = parseTs('2024-01-02T03:04:05.123456Z');
    expect(formatTick(t, DAY)).toBe('01-02');
    expect(formatTick(t, MINUTE)).toBe('03:04');
    expect(formatTick(t, SECOND)).toBe('03:04:05');
    expect(formatTick(t, MS)).toBe('05.123');
    expect(formatTick(t, 10)).toBe('05.123456');
  });
});
