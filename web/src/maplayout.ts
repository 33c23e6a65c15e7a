// Node placement for the network map, in Cytoscape model coordinates. Cytoscape's
// force-directed layout (cose) lays out a whole new graph of four nodes or more; this
// module does the rest, deterministically:
//   - placeNew: positions for the nodes that have none (a graph of one to three
//     nodes, or nodes that appear next to nodes already placed or restored from the
//     saved positions): each one goes next to its placed neighbours, where it keeps
//     clear of every other node, clients to the left and servers to the right;
//   - separate: moves nodes apart until no two of them (circle and label below it)
//     overlap, whatever put them there (cose, saved positions from other graphs, a
//     node dropped onto another), so every edge and every label stays visible.

import type { Position } from './api';

/**
 * The space a node takes: its circle and its label, as a rectangle of w × h whose
 * centre is (dx, dy) from the node's position (the label hangs below the circle).
 */
export interface Box {
  w: number;
  h: number;
  dx: number;
  dy: number;
}

export interface LayoutNode {
  id: string;
  box: Box;
  kind?: string; // 'client' | 'server' | 'both'
}

export interface LayoutEdge {
  source: string;
  target: string;
}

/** Free space kept between two node boxes. */
export const GAP = 24;
/** Least distance from a node to a neighbour placed next to it (centre to centre; more for long labels). */
export const SPACING = 160;

/** Label metrics of the map's stylesheet (11 px font, 4 px below the circle, 2 px outline). */
const LABEL_CHAR = 6.6;
const LABEL_H = 17;
const LABEL_MARGIN = 4;

/** The box of a node of diameter `size` whose label is `label` (estimated text metrics). */
export function nodeBox(size: number, label: string): Box {
  const lw = label ? label.length * LABEL_CHAR + 4 : 0;
  const lh = label ? LABEL_MARGIN + LABEL_H : 0;
  return { w: Math.max(size, lw), h: size + lh, dx: 0, dy: lh / 2 };
}

/**
 * Space between the boxes of two nodes at a and b: the distance between the
 * rectangles when they are apart, negative (minus the smaller overlap) when they
 * overlap.
 */
export function clearance(a: Position, ba: Box, b: Position, bb: Box): number {
  const gx = Math.abs(b.x + bb.dx - (a.x + ba.dx)) - (ba.w + bb.w) / 2;
  const gy = Math.abs(b.y + bb.dy - (a.y + ba.dy)) - (ba.h + bb.h) / 2;
  if (gx > 0 && gy > 0) return Math.hypot(gx, gy);
  return Math.max(gx, gy);
}

/** Pairs of nodes whose boxes are closer than `gap` (for the tests and the checks). */
export function overlapping(pos: Record<string, Position>, boxes: Record<string, Box>, gap = 0): [string, string][] {
  const ids = Object.keys(pos).filter((id) => boxes[id]);
  const out: [string, string][] = [];
  for (let i = 0; i < ids.length; i++) {
    for (let j = i + 1; j < ids.length; j++) {
      if (clearance(pos[ids[i]], boxes[ids[i]], pos[ids[j]], boxes[ids[j]]) < gap) out.push([ids[i], ids[j]]);
    }
  }
  return out;
}

// Directions tried around an anchor, in order of preference: sideways first (an edge
// going straight down runs through the label under the node), servers to the right
// of what calls them, clients to the left.
const RIGHT = [0, -30, 30, -60, 60, -120, 120, -150, 150, 180, -90, 90];
const LEFT = RIGHT.map((a) => (a === 0 ? 180 : a === 180 ? 0 : a > 0 ? 180 - a : -180 - a));
const RINGS = [1, 1.6, 2.4];

/**
 * Positions for every node: those in `placed` keep theirs, the others are put next
 * to their placed neighbours (most placed neighbours first), keeping at least 2·GAP
 * clear of every node placed so far when the rings around the anchor allow it.
 * A node with no placed neighbour starts a new group: at the origin when nothing
 * is placed yet, else to the right of everything placed.
 */
export function placeNew(nodes: LayoutNode[], edges: LayoutEdge[], placed: Record<string, Position>): Record<string, Position> {
  const pos: Record<string, Position> = {};
  const box = new Map(nodes.map((n) => [n.id, n.box]));
  const order = new Map(nodes.map((n, i) => [n.id, i]));
  for (const n of nodes) {
    const p = placed[n.id];
    if (p && Number.isFinite(p.x) && Number.isFinite(p.y)) pos[n.id] = { x: p.x, y: p.y };
  }
  const nbrs = new Map<string, Set<string>>(nodes.map((n) => [n.id, new Set<string>()]));
  for (const e of edges) {
    if (e.source === e.target || !nbrs.has(e.source) || !nbrs.has(e.target)) continue;
    nbrs.get(e.source)!.add(e.target);
    nbrs.get(e.target)!.add(e.source);
  }
  const kindRank = (n: LayoutNode) => (n.kind === 'client' ? 0 : n.kind === 'both' ? 1 : 2);
  const todo = nodes.filter((n) => !pos[n.id]);
  const placedIds = () => Object.keys(pos);

  while (todo.length) {
    // The next node: the one with most placed neighbours, then most neighbours, then clients first.
    let best = -1;
    let bestKey: number[] = [];
    todo.forEach((n, i) => {
      const ns = nbrs.get(n.id)!;
      let k = 0;
      for (const m of ns) if (pos[m]) k++;
      const key = [k, ns.size, -kindRank(n), -order.get(n.id)!];
      if (best < 0 || cmp(key, bestKey) > 0) {
        best = i;
        bestKey = key;
      }
    });
    const n = todo.splice(best, 1)[0];
    const b = n.box;
    const anchors = [...nbrs.get(n.id)!].filter((m) => pos[m]);
    if (anchors.length === 0) {
      const ids = placedIds();
      if (ids.length === 0) {
        pos[n.id] = { x: 0, y: 0 };
      } else {
        // Right of everything placed, level with its top.
        let x2 = -Infinity;
        let y1 = Infinity;
        for (const id of ids) {
          const p = pos[id];
          const q = box.get(id)!;
          x2 = Math.max(x2, p.x + q.dx + q.w / 2);
          y1 = Math.min(y1, p.y + q.dy - q.h / 2);
        }
        pos[n.id] = { x: x2 + GAP * 2 + b.w / 2 - b.dx, y: y1 + b.h / 2 - b.dy };
      }
      continue;
    }
    const ax = anchors.reduce((s, m) => s + pos[m].x, 0) / anchors.length;
    const ay = anchors.reduce((s, m) => s + pos[m].y, 0) / anchors.length;
    const dirs = n.kind === 'client' ? LEFT : RIGHT;
    const others = placedIds();
    // Far enough in each direction for the boxes (labels included) to clear the anchors'.
    const aw = Math.max(...anchors.map((m) => box.get(m)!.w));
    const ah = Math.max(...anchors.map((m) => box.get(m)!.h));
    const reach = (cos: number, sin: number) =>
      Math.max(
        SPACING,
        Math.min(
          Math.abs(cos) > 1e-9 ? ((aw + b.w) / 2 + GAP * 2 + 1) / Math.abs(cos) : Infinity,
          Math.abs(sin) > 1e-9 ? ((ah + b.h) / 2 + GAP * 2 + 1) / Math.abs(sin) : Infinity,
        ),
      );
    let choice: Position | null = null;
    let fallback: Position = { x: ax + SPACING, y: ay };
    let fallbackScore = -Infinity;
    search: for (const ring of RINGS) {
      for (const deg of dirs) {
        const r = (deg * Math.PI) / 180;
        const d = reach(Math.cos(r), Math.sin(r)) * ring;
        const c = { x: ax + Math.cos(r) * d, y: ay + Math.sin(r) * d };
        let clear = Infinity;
        for (const id of others) clear = Math.min(clear, clearance(c, b, pos[id], box.get(id)!));
        if (clear >= GAP * 2) {
          choice = c;
          break search;
        }
        if (clear > fallbackScore) {
          fallbackScore = clear;
          fallback = c;
        }
      }
    }
    pos[n.id] = choice ?? fallback;
  }
  return pos;
}

function cmp(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/**
 * Moves nodes apart until every two boxes are at least GAP apart (or the work
 * bound is reached). Of two nodes too close, the one of lower `rank` moves; of
 * equal rank, both move half the way; two nodes of rank Infinity (fixed) are left
 * as they are. Each pair is pushed along the axis where
 * the overlap is smaller (coincident nodes: the later one goes down). A crowd (more
 * overlapping pairs than nodes) is first spread out from its centre. Returns new
 * positions; the input is not changed.
 */
export function separate(
  pos: Record<string, Position>,
  boxes: Record<string, Box>,
  rank: (id: string) => number = () => 0,
): Record<string, Position> {
  const ids = Object.keys(pos).filter((id) => boxes[id]);
  const p = ids.map((id) => ({ x: pos[id].x, y: pos[id].y }));
  const b = ids.map((id) => boxes[id]);
  const r = ids.map((id) => rank(id));
  const n = ids.length;
  if (n < 2) return { ...pos };
  const idx = ids.map((_, i) => i);
  const left = (i: number) => p[i].x + b[i].dx - b[i].w / 2;

  // One sweep over the nodes sorted by left edge: only pairs whose x ranges come
  // within GAP are compared. With `push`, too-close pairs are pushed apart at once
  // (positions change during the sweep; the next sweep catches what that hid).
  let checks = 0;
  const sweep = (push: boolean): number => {
    idx.sort((i, j) => left(i) - left(j));
    let found = 0;
    for (let a = 0; a < n; a++) {
      const i = idx[a];
      for (let c = a + 1; c < n; c++) {
        const j = idx[c];
        if (left(j) >= left(i) + b[i].w + GAP) break;
        checks++;
        if (r[i] === Infinity && r[j] === Infinity) continue;
        const dx = p[j].x + b[j].dx - (p[i].x + b[i].dx);
        const dy = p[j].y + b[j].dy - (p[i].y + b[i].dy);
        const px = (b[i].w + b[j].w) / 2 + GAP - Math.abs(dx);
        const py = (b[i].h + b[j].h) / 2 + GAP - Math.abs(dy);
        // Already apart on one axis (a unit of slack keeps rounded, saved positions stable).
        if (px <= 1 || py <= 1) continue;
        found++;
        if (!push) continue;
        // Push one unit further than needed, so that rounding never brings the pair back.
        let mx = 0;
        let my = 0;
        if (px < py) mx = (dx < 0 ? -1 : 1) * (px + 1);
        else my = (dy < 0 || (dy === 0 && j < i) ? -1 : 1) * (py + 1);
        const wi = r[i] > r[j] ? 0 : r[i] < r[j] ? 1 : 0.5;
        const wj = 1 - wi;
        p[i].x -= mx * wi;
        p[i].y -= my * wi;
        p[j].x += mx * wj;
        p[j].y += my * wj;
      }
    }
    return found;
  };

  // A crowd (more overlapping pairs than nodes): spread it out from its centre
  // until the boxes have room, then push the remaining pairs apart.
  let crowd = sweep(false) > n;
  for (let k = 0; crowd && k < 6; k++) {
    let area = 0;
    let cx = 0;
    let cy = 0;
    let x1 = Infinity;
    let x2 = -Infinity;
    let y1 = Infinity;
    let y2 = -Infinity;
    let mw = 0;
    let mh = 0;
    for (let i = 0; i < n; i++) {
      area += (b[i].w + GAP) * (b[i].h + GAP);
      cx += p[i].x / n;
      cy += p[i].y / n;
      x1 = Math.min(x1, p[i].x);
      x2 = Math.max(x2, p[i].x);
      y1 = Math.min(y1, p[i].y);
      y2 = Math.max(y2, p[i].y);
      mw += b[i].w / n;
      mh += b[i].h / n;
    }
    const f = Math.max(1.25, Math.sqrt((1.5 * area) / ((x2 - x1 + mw) * (y2 - y1 + mh))));
    for (const q of p) {
      q.x = cx + (q.x - cx) * f;
      q.y = cy + (q.y - cy) * f;
    }
    crowd = sweep(false) > n / 4;
  }
  // Bounded work: some ten million pair checks at most (well under a second).
  for (let round = 0; round < 5000 && checks < 1e7; round++) if (sweep(true) === 0) break;

  const out: Record<string, Position> = { ...pos };
  ids.forEach((id, i) => (out[id] = p[i]));
  return out;
}
