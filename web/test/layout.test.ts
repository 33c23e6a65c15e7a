import { describe, expect, it } from 'vitest';
import type { MapData, Sequence } from '../src/api';
import { allPositioned, COLORS, edgeHealth, edgeLineStyle, edgeWidth, healthColor, nodeSize, toElements } from '../src/mapstyle';
import { quality } from '../src/quality';
import { callClass, layoutSequence } from '../src/sequence';
import { exploreFromParams, exploreToParams, formatHash, parseHash } from '../src/route';
import { MS, parseTs, SECOND } from '../src/time';
import { nearEnd, scrollToRow, visibleRange } from '../src/vlist';

describe('sequence layout', () => {
  const seq: Sequence = {
    participants: [
      { id: '10.0.0.3', name: 'db', ip: '10.0.0.3' },
      { id: '10.0.0.1', name: 'web', ip: '10.0.0.1' },
      { id: '10.0.0.2', name: 'api.internal', ip: '10.0.0.2' },
    ],
    calls: [
      { id: 'c2', ts: '2024-01-01T00:00:01.000000Z', duration_us: 500, from: '10.0.0.2', to: '10.0.0.3', label: 'POST /q', status: 500, error: '' },
      { id: 'c1', ts: '2024-01-01T00:00:00.000000Z', duration_us: 2000, from: '10.0.0.1', to: '10.0.0.2', label: 'GET /users', status: 200, error: '' },
      { id: 'c3', ts: '2024-01-01T00:00:02.000000Z', duration_us: 10, from: '10.0.0.2', to: '10.0.0.2', label: 'GET /self', status: 0, error: '' },
    ],
  };
  const l = layoutSequence(seq);
  it('orders participants by first appearance in time', () => {
    expect(l.participants.map((p) => p.name)).toEqual(['web', 'api.internal', 'db']);
    const xs = l.participants.map((p) => p.x);
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
  });
  it('puts calls in time order, one row each, arrows between the right lifelines', () => {
    expect(l.calls.map((c) => c.id)).toEqual(['c1', 'c2', 'c3']);
    expect(l.calls[0].y).toBeLessThan(l.calls[1].y);
    const x = Object.fromEntries(l.participants.map((p) => [p.id, p.x]));
    expect(l.calls[0]).toMatchObject({ x1: x['10.0.0.1'], x2: x['10.0.0.2'], self: false, offset_us: 0 });
    expect(l.calls[1].offset_us).toBe(SECOND);
    expect(l.calls[2].self).toBe(true);
    expect(l.height).toBeGreaterThan(l.calls[2].y);
    expect(l.width).toBeGreaterThan(l.participants[2].x);
  });
  it('classes calls', () => {
    expect(callClass({ status: 500, error: '' })).toBe('error');
    expect(callClass({ status: 200, error: 'parse' })).toBe('error');
    expect(callClass({ status: 404, error: '' })).toBe('warn');
    expect(callClass({ status: 0, error: true })).toBe('none');
    expect(callClass({ status: 502, error: true })).toBe('error');
    expect(callClass({ status: 204, error: '' })).toBe('ok');
  });
});

describe('map styling', () => {
  it('edge width grows with volume, bounded', () => {
    expect(edgeWidth(1, 1000)).toBeLessThan(edgeWidth(100, 1000));
    expect(edgeWidth(1000, 1000)).toBe(10);
    expect(edgeWidth(0, 10)).toBe(1);
    expect(nodeSize(0, 10)).toBe(18);
    expect(nodeSize(10, 10)).toBe(48);
  });
  it('colours by errors first, then p95 latency', () => {
    expect(edgeHealth({ count: 100, errors: 10, p95_us: 1 })).toBe('error');
    expect(edgeHealth({ count: 100, errors: 1, p95_us: 5 * SECOND })).toBe('some-errors');
    expect(edgeHealth({ count: 100, errors: 0, p95_us: 2 * SECOND })).toBe('slower');
    expect(edgeHealth({ count: 100, errors: 0, p95_us: 300 * MS })).toBe('slow');
    expect(edgeHealth({ count: 100, errors: 0, p95_us: 3 * MS })).toBe('ok');
    expect(healthColor('error')).toBe(COLORS.error);
    expect(edgeLineStyle('http')).toBe('solid');
    expect(edgeLineStyle('tls')).toBe('dashed');
    expect(edgeLineStyle('dns')).toBe('dotted');
  });
  it('builds elements with names, saved positions, and drops dangling edges', () => {
    const map: MapData = {
      nodes: [
        { id: '10.0.0.1', ip: '10.0.0.1', name: 'web', kind: 'client', requests: 10, errors: 0, bytes: 1 },
        { id: '10.0.0.2', ip: '10.0.0.2', name: '', kind: 'server', requests: 10, errors: 2, bytes: 1 },
      ],
      edges: [
        { id: 'e1', source: '10.0.0.1', target: '10.0.0.2', protocol: 'http', count: 10, errors: 2, p50_us: 1, p95_us: 2, bytes: 5 },
        { id: 'e2', source: '10.0.0.1', target: '10.9.9.9', protocol: 'tcp', count: 1, errors: 0, p50_us: 0, p95_us: 0, bytes: 0 },
      ],
    };
    const els = toElements(map, { '10.0.0.1': { x: 5, y: 6 } });
    expect(els).toHaveLength(3);
    expect(els[0]).toMatchObject({ data: { label: 'web' }, position: { x: 5, y: 6 } });
    expect(els[1].data.label).toBe('10.0.0.2');
    expect(els[1].position).toBeUndefined();
    expect(els[2].data).toMatchObject({ id: 'e1', health: 'error', color: COLORS.error, width: 10 });
    expect(allPositioned(map, { '10.0.0.1': { x: 0, y: 0 } })).toBe(false);
    expect(allPositioned(map, { '10.0.0.1': { x: 0, y: 0 }, '10.0.0.2': { x: 1, y: 1 } })).toBe(true);
  });
});

describe('capture quality', () => {
  const b = { ts: '', captured: 1000, dropped: 0, overflow: 0, gaps: 0, missing_bytes: 0 };
  it('classes buckets', () => {
    expect(quality(b)).toBe('good');
    expect(quality({ ...b, captured: 0 })).toBe('none');
    expect(quality({ ...b, dropped: 5 })).toBe('degraded');
    expect(quality({ ...b, overflow: 50 })).toBe('bad');
    expect(quality({ ...b, gaps: 1 })).toBe('bad');
    expect(quality({ ...b, missing_bytes: 10 })).toBe('degraded');
  });
});

describe('virtual list', () => {
  it('renders only the visible rows plus overscan', () => {
    const r = visibleRange(2400, 480, 24, 10_000, 5);
    expect(r.start).toBe(95);
    expect(r.end).toBe(100 + 21 + 5);
    expect(r.padTop).toBe(95 * 24);
    expect(r.padTop + (r.end - r.start) * 24 + r.padBottom).toBe(10_000 * 24);
    expect(visibleRange(0, 480, 24, 0)).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0 });
    expect(visibleRange(0, 480, 24, 3).end).toBe(3);
  });
  it('scrolls a row into view', () => {
    expect(scrollToRow(0, 100, 240, 24)).toBe(0);
    expect(scrollToRow(20, 0, 240, 24)).toBe(21 * 24 - 240);
    expect(scrollToRow(5, 0, 240, 24)).toBe(0);
  });
  it('asks for more near the end', () => {
    expect(nearEnd(0, 480, 24, 100)).toBe(false);
    expect(nearEnd(1500, 480, 24, 100)).toBe(true);
  });
});

describe('routes', () => {
  it('parses and formats hashes', () => {
    const r = parseHash('#/admin/users?x=1');
    expect(r.path).toEqual(['admin', 'users']);
    expect(r.params.get('x')).toBe('1');
    expect(parseHash('').path).toEqual(['explore']);
    expect(formatHash(['public', 'a/b'], { q: 'x = "1"', e: '' })).toBe('#/public/a%2Fb?q=x+%3D+%221%22');
  });
  it('round-trips the explore state', () => {
    const now = parseTs('2024-01-01T12:00:00Z');
    const d = exploreFromParams(new URLSearchParams(''), now);
    expect(d).toMatchObject({ rel: '1h', to: now, defaulted: true, tab: 'map', sort: '-ts' });
    const st = { rel: '', from: parseTs('2024-01-01T00:00:00.000001Z'), to: parseTs('2024-01-01T00:00:01Z'), q: 'host = a', tab: 'sequence' as const, sel: 'x1', sort: 'status' as const };
    const back = exploreFromParams(new URLSearchParams(exploreToParams(st) as Record<string, string>), now);
    expect(back).toEqual({ ...st, defaulted: false });
    expect(exploreFromParams(new URLSearchParams('from=garbage&to=x&rel=bogus'), now)).toMatchObject({ rel: '1h' });
  });
});
