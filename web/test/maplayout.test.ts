import { describe, expect, it } from 'vitest';
import type { Position } from '../src/api';
import { type Box, clearance, GAP, type LayoutEdge, type LayoutNode, nodeBox, overlapping, placeNew, separate } from '../src/maplayout';

const sizes = new Map<string, number>(); // circle diameters, by node id
const node = (id: string, kind = 'server', size = 48, label = id): LayoutNode => {
  sizes.set(id, size);
  return { id, kind, box: nodeBox(size, label) };
};
const boxesOf = (nodes: LayoutNode[]): Record<string, Box> => Object.fromEntries(nodes.map((n) => [n.id, n.box]));

/** The gap between the circles of two nodes along the line between their centres (where the edge is drawn). */
function edgeRoom(a: Position, b: Position, sa: number, sb: number): number {
  return Math.hypot(a.x - b.x, a.y - b.y) - sa / 2 - sb / 2;
}

/** What the map must never show: overlapping nodes or labels, edges hidden under nodes. */
function problems(nodes: LayoutNode[], edges: LayoutEdge[], pos: Record<string, Position>): string[] {
  const out: string[] = [];
  for (const n of nodes) {
    const p = pos[n.id];
    if (!p || !Number.isFinite(p.x) || !Number.isFinite(p.y)) out.push(`${n.id}: no position`);
  }
  if (out.length) return out;
  for (const [a, b] of overlapping(pos, boxesOf(nodes), GAP - 1)) out.push(`${a} and ${b} overlap`);
  for (const e of edges) {
    if (e.source === e.target) continue;
    const room = edgeRoom(pos[e.source], pos[e.target], sizes.get(e.source)!, sizes.get(e.target)!);
    if (room < GAP) out.push(`edge ${e.source}→${e.target}: ${room.toFixed(1)} units visible`);
  }
  return out;
}

describe('map node boxes', () => {
  it('covers the circle and the label under it', () => {
    const b = nodeBox(48, 'upload.wikimedia.org');
    expect(b.w).toBeGreaterThan(48);
    expect(b.h).toBeGreaterThan(48);
    expect(b.dy).toBeGreaterThan(0);
    expect(nodeBox(30, '')).toEqual({ w: 30, h: 30, dx: 0, dy: 0 });
  });
  it('measures clearance: positive apart, negative overlapping', () => {
    const b: Box = { w: 10, h: 10, dx: 0, dy: 0 };
    expect(clearance({ x: 0, y: 0 }, b, { x: 30, y: 0 }, b)).toBe(20);
    expect(clearance({ x: 0, y: 0 }, b, { x: 13, y: 14 }, b)).toBeCloseTo(5, 6);
    expect(clearance({ x: 0, y: 0 }, b, { x: 4, y: 0 }, b)).toBe(-6);
    expect(overlapping({ a: { x: 0, y: 0 }, b: { x: 4, y: 0 } }, { a: b, b })).toEqual([['a', 'b']]);
  });
});

describe('map placement of new nodes', () => {
  it('places a single node', () => {
    const pos = placeNew([node('a')], [], {});
    expect(pos).toEqual({ a: { x: 0, y: 0 } });
  });

  it('places two nodes side by side, client left, server right, edge and labels visible', () => {
    // The bro.org capture: one client, one server, two edges (HTTP and TCP).
    const nodes = [node('192.150.187.43', 'server', 48, 'bro.org'), node('10.0.2.15', 'client', 36)];
    const edges = [
      { source: '10.0.2.15', target: '192.150.187.43' },
      { source: '10.0.2.15', target: '192.150.187.43' },
    ];
    const pos = placeNew(nodes, edges, {});
    expect(problems(nodes, edges, pos)).toEqual([]);
    expect(pos['10.0.2.15'].x).toBeLessThan(pos['192.150.187.43'].x);
    expect(pos['10.0.2.15'].y).toBe(pos['192.150.187.43'].y);
  });

  it('keeps two nodes with long labels side by side, farther apart', () => {
    // The wikipedia capture filtered on one host.
    const nodes = [node('141.142.220.118', 'client', 48), node('208.80.152.3', 'server', 41, 'upload.wikimedia.org')];
    const edges = [{ source: '141.142.220.118', target: '208.80.152.3' }];
    const pos = placeNew(nodes, edges, {});
    expect(problems(nodes, edges, pos)).toEqual([]);
    expect(pos['208.80.152.3'].y).toBeCloseTo(pos['141.142.220.118'].y, 6);
    expect(clearance(pos['141.142.220.118'], nodes[0].box, pos['208.80.152.3'], nodes[1].box)).toBeGreaterThanOrEqual(2 * GAP);
  });

  it('places three nodes: a chain and a fan-out', () => {
    const chain = [node('c', 'client'), node('p', 'both'), node('s', 'server')];
    const chainEdges = [
      { source: 'c', target: 'p' },
      { source: 'p', target: 's' },
    ];
    const a = placeNew(chain, chainEdges, {});
    expect(problems(chain, chainEdges, a)).toEqual([]);
    expect(a.c.x).toBeLessThan(a.p.x);
    expect(a.p.x).toBeLessThan(a.s.x);

    const fan = [node('client', 'client', 48, '141.142.220.118'), node('s1', 'server', 40, 'upload.wikimedia.org'), node('s2', 'server', 30, 'bits.wikimedia.org')];
    const fanEdges = [
      { source: 'client', target: 's1' },
      { source: 'client', target: 's2' },
    ];
    const b = placeNew(fan, fanEdges, {});
    expect(problems(fan, fanEdges, b)).toEqual([]);

    const triangle = [...fan];
    const triEdges = [...fanEdges, { source: 's1', target: 's2' }];
    expect(problems(triangle, triEdges, placeNew(triangle, triEdges, {}))).toEqual([]);
  });

  it('puts a new node beside a placed neighbour, never on top of it', () => {
    // The regression: the node kept from the previous graph sat near the origin and
    // the new one was laid out from the origin, ending on top of it.
    const nodes = [node('192.150.187.43', 'server', 48, 'bro.org'), node('10.0.2.15', 'client', 36)];
    const edges = [{ source: '10.0.2.15', target: '192.150.187.43' }];
    for (const kept of [
      { x: 0, y: 0 },
      { x: 25, y: 25 },
      { x: -300, y: 480 },
    ]) {
      const pos = placeNew(nodes, edges, { '192.150.187.43': kept });
      expect(pos['192.150.187.43']).toEqual(kept);
      expect(problems(nodes, edges, pos)).toEqual([]);
    }
  });

  it('places nodes without a placed neighbour apart from the rest', () => {
    const nodes = [node('a'), node('b'), node('x'), node('y')];
    const edges = [
      { source: 'a', target: 'b' },
      { source: 'x', target: 'y' },
    ];
    const pos = placeNew(nodes, edges, { a: { x: 0, y: 0 }, b: { x: 200, y: 0 } });
    expect(problems(nodes, edges, pos)).toEqual([]);
    expect(pos.x.x).toBeGreaterThan(200);
  });

  it('is deterministic and fills a busy neighbourhood without overlaps', () => {
    const nodes = [node('hub', 'client', 48, '10.1.2.3')];
    const edges: LayoutEdge[] = [];
    for (let i = 0; i < 30; i++) {
      nodes.push(node(`s${i}`, 'server', 18 + (i % 5) * 6, `service-${i}.internal.example.com`));
      edges.push({ source: 'hub', target: `s${i}` });
    }
    const a = placeNew(nodes, edges, {});
    expect(placeNew(nodes, edges, {})).toEqual(a);
    expect(problems(nodes, edges, separate(a, boxesOf(nodes)))).toEqual([]);
  });
});

describe('map separation', () => {
  it('moves coincident nodes apart', () => {
    const nodes = [node('a'), node('b'), node('c')];
    const pos = separate({ a: { x: 10, y: 10 }, b: { x: 10, y: 10 }, c: { x: 10, y: 10 } }, boxesOf(nodes));
    expect(overlapping(pos, boxesOf(nodes), GAP - 1)).toEqual([]);
  });

  it('moves the lower rank only: a dropped node comes off the one it was dropped on', () => {
    const nodes = [node('dropped'), node('other')];
    const before = { dropped: { x: 5, y: 3 }, other: { x: 0, y: 0 } };
    const pos = separate(before, boxesOf(nodes), (id) => (id === 'dropped' ? 0 : 1));
    expect(pos.other).toEqual({ x: 0, y: 0 });
    expect(overlapping(pos, boxesOf(nodes), GAP - 1)).toEqual([]);
    expect(before.dropped).toEqual({ x: 5, y: 3 }); // input untouched
  });

  it('leaves fixed nodes alone, even overlapping each other', () => {
    const nodes = [node('f1'), node('f2'), node('loose')];
    const before = { f1: { x: 0, y: 0 }, f2: { x: 10, y: 0 }, loose: { x: 5, y: 5 } };
    const pos = separate(before, boxesOf(nodes), (id) => (id === 'loose' ? 0 : Infinity));
    expect(pos.f1).toEqual(before.f1);
    expect(pos.f2).toEqual(before.f2);
    expect(overlapping(pos, boxesOf(nodes), GAP - 1)).toEqual([['f1', 'f2']]);
  });

  it('separates saved positions that came from different graphs', () => {
    // Positions saved while looking at one graph, and at another, meet in a third.
    const nodes = [node('a', 'client', 48, '10.0.0.1'), node('b', 'server', 48, 'api.internal'), node('c', 'server', 30, 'db.internal')];
    const saved = { a: { x: 100, y: 100 }, b: { x: 108, y: 96 }, c: { x: 400, y: 100 } };
    const pos = separate(saved, boxesOf(nodes));
    expect(problems(nodes, [{ source: 'a', target: 'b' }], pos)).toEqual([]);
    expect(pos.c).toEqual(saved.c); // not involved: not moved
  });

  it('leaves positions that are already apart alone (saved positions stay where the user left them)', () => {
    const nodes = [node('a'), node('b')];
    const pos = { a: { x: 0, y: 0 }, b: { x: 300, y: 10 } };
    expect(separate(pos, boxesOf(nodes))).toEqual(pos);
    // Rounded to whole units when saved: still stable.
    const tight = separate({ a: { x: 0, y: 0 }, b: { x: 1, y: 0 } }, boxesOf(nodes));
    const r = Object.fromEntries(Object.entries(tight).map(([k, p]) => [k, { x: Math.round(p.x), y: Math.round(p.y) }]));
    expect(separate(r, boxesOf(nodes))).toEqual(r);
  });

  it('untangles crowded random graphs', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (const [count, span] of [
      [12, 1000],
      [60, 300],
      [400, 200],
    ]) {
      const nodes: LayoutNode[] = [];
      const pos: Record<string, Position> = {};
      for (let i = 0; i < count; i++) {
        nodes.push(node(`n${i}`, 'server', 18 + Math.floor(rnd() * 30), `host-${i}.example`));
        pos[`n${i}`] = { x: rnd() * span, y: rnd() * span };
      }
      expect(overlapping(pos, boxesOf(nodes)).length).toBeGreaterThan(0);
      expect(overlapping(separate(pos, boxesOf(nodes)), boxesOf(nodes), GAP - 1), `${count} nodes in ${span}²`).toEqual([]);
    }
  });
});
