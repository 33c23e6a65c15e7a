// Map styling: turns the API's nodes and edges into Cytoscape elements (with saved
// positions) and decides sizes and colours. Edge width grows with the log of the
// request count; colour says errors first (any error rate), then latency (p95).

import type { MapData, MapEdge, MapNode, Position } from './api';
import { formatDuration, MS, SECOND } from './time';

export const COLORS = {
  ok: '#73bf69',
  slow: '#fade2a',
  slower: '#ff9830',
  error: '#f2495c',
  warnError: '#ff7383',
  idle: '#6e7681',
  node: '#3d71d9',
  nodeServer: '#8f5bd6',
  nodeBoth: '#3d9ad9',
};

/** Width in px for an edge carrying `count` when the busiest carries `max`. */
export function edgeWidth(count: number, max: number): number {
  if (count <= 0 || max <= 0) return 1;
  if (max === 1) return 2;
  return Math.round((1 + (9 * Math.log(1 + count)) / Math.log(1 + max)) * 10) / 10;
}

/** Diameter in px for a node with `n` requests when the busiest has `max`. */
export function nodeSize(n: number, max: number): number {
  if (n <= 0 || max <= 0) return 18;
  return Math.round(18 + (30 * Math.log(1 + n)) / Math.log(1 + Math.max(1, max)));
}

export type Health = 'error' | 'some-errors' | 'slower' | 'slow' | 'ok' | 'idle';

/** Health class of an edge: ≥5% errors, some errors, p95 ≥ 1 s, p95 ≥ 200 ms, ok. */
export function edgeHealth(e: Pick<MapEdge, 'count' | 'errors' | 'p95_us'>): Health {
  if (e.count <= 0) return 'idle';
  const rate = e.errors / e.count;
  if (rate >= 0.05) return 'error';
  if (e.errors > 0) return 'some-errors';
  if (e.p95_us >= SECOND) return 'slower';
  if (e.p95_us >= 200 * MS) return 'slow';
  return 'ok';
}

export function healthColor(h: Health): string {
  switch (h) {
    case 'error':
      return COLORS.error;
    case 'some-errors':
      return COLORS.warnError;
    case 'slower':
      return COLORS.slower;
    case 'slow':
      return COLORS.slow;
    case 'ok':
      return COLORS.ok;
    default:
      return COLORS.idle;
  }
}

export function nodeColor(n: Pick<MapNode, 'kind' | 'errors'>): string {
  if (n.errors > 0) return COLORS.error;
  return n.kind === 'server' ? COLORS.nodeServer : n.kind === 'both' ? COLORS.nodeBoth : COLORS.node;
}

/** Line style per protocol: HTTP solid, TLS dashed, plain TCP and DNS dotted. */
export function edgeLineStyle(protocol: string): 'solid' | 'dashed' | 'dotted' {
  if (protocol === 'http') return 'solid';
  if (protocol === 'tls') return 'dashed';
  return 'dotted';
}

export function edgeLabel(e: MapEdge): string {
  const parts = [`${e.count}`];
  if (e.errors) parts.push(`${e.errors} err`);
  if (e.p95_us) parts.push(`p95 ${formatDuration(e.p95_us)}`);
  return parts.join(' · ');
}

export interface ElementDef {
  group: 'nodes' | 'edges';
  data: Record<string, unknown>;
  position?: Position;
}

/** Cytoscape elements for a map, positioned where the user left them. */
export function toElements(map: MapData, positions: Record<string, Position>): ElementDef[] {
  const maxReq = Math.max(1, ...map.nodes.map((n) => n.requests));
  const maxCount = Math.max(1, ...map.edges.map((e) => e.count));
  const ids = new Set(map.nodes.map((n) => n.id));
  const out: ElementDef[] = [];
  for (const n of map.nodes) {
    const el: ElementDef = {
      group: 'nodes',
      data: {
        id: n.id,
        label: n.name || n.ip,
        ip: n.ip,
        kind: n.kind,
        requests: n.requests,
        errors: n.errors,
        bytes: n.bytes,
        size: nodeSize(n.requests, maxReq),
        color: nodeColor(n),
      },
    };
    const p = positions[n.id];
    if (p && Number.isFinite(p.x) && Number.isFinite(p.y)) el.position = { x: p.x, y: p.y };
    out.push(el);
  }
  for (const e of map.edges) {
    if (!ids.has(e.source) || !ids.has(e.target)) continue; // defensive: dangling edge
    const h = edgeHealth(e);
    out.push({
      group: 'edges',
      data: {
        id: e.id,
        source: e.source,
        target: e.target,
        protocol: e.protocol,
        count: e.count,
        errors: e.errors,
        p50_us: e.p50_us,
        p95_us: e.p95_us,
        bytes: e.bytes,
        width: edgeWidth(e.count, maxCount),
        color: healthColor(h),
        health: h,
        lineStyle: edgeLineStyle(e.protocol),
        label: edgeLabel(e),
      },
    });
  }
  return out;
}

/** True when every node has a saved position (then no automatic layout is needed). */
export function allPositioned(map: MapData, positions: Record<string, Position>): boolean {
  return map.nodes.every((n) => positions[n.id] !== undefined);
}

/** The Cytoscape stylesheet (data-driven from toElements). */
export const stylesheet = [
  {
    selector: 'node',
    style: {
      'background-color': 'data(color)',
      width: 'data(size)',
      height: 'data(size)',
      label: 'data(label)',
      color: '#d8d9da',
      'font-size': 11,
      'text-valign': 'bottom',
      'text-margin-y': 4,
      'text-outline-color': '#111217',
      'text-outline-width': 2,
      'border-width': 1,
      'border-color': '#0b0c0e',
    },
  },
  { selector: 'node:selected', style: { 'border-width': 3, 'border-color': '#ffffff' } },
  {
    selector: 'edge',
    style: {
      width: 'data(width)',
      'line-color': 'data(color)',
      'line-style': 'data(lineStyle)',
      'target-arrow-color': 'data(color)',
      'target-arrow-shape': 'triangle',
      'arrow-scale': 0.8,
      'curve-style': 'bezier',
      opacity: 0.85,
      'font-size': 9,
      color: '#9fa7b3',
      'text-rotation': 'autorotate',
      'text-outline-color': '#111217',
      'text-outline-width': 2,
    },
  },
  { selector: 'edge:selected', style: { opacity: 1, 'overlay-opacity': 0.15, 'overlay-color': '#ffffff' } },
  // Edge labels only on hover, to keep busy maps readable (the tooltip has the details).
  { selector: 'edge.hover', style: { label: 'data(label)', opacity: 1 } },
  { selector: '.faded', style: { opacity: 0.2 } },
];
