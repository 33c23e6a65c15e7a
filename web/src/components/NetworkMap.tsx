// The network map (Cytoscape.js): automatic layout, nodes named by host name,
// edges weighted by volume and coloured by errors/latency. Dragged positions are
// saved per user or team; clicking a node or an edge filters on it. Placement rules
// (src/maplayout.ts): cose lays out a new graph of four nodes or more, new nodes of
// smaller graphs or next to placed ones go beside their neighbours, and no two nodes
// ever overlap (a node dropped onto another is moved off it before it is saved).

import type cytoscape from 'cytoscape';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { MapData, Position, Scope } from '../api';
import { formatBytes } from '../format';
import { edgeClause, nodeClause } from '../filter';
import { type Box, type LayoutNode, nodeBox, placeNew, separate } from '../maplayout';
import { COLORS, stylesheet, toElements } from '../mapstyle';
import { formatDuration } from '../time';

interface Props {
  data: MapData;
  positions: Record<string, Position>;
  scope: Scope;
  onScope?: (s: Scope) => void;
  onPositions?: (p: Record<string, Position>) => void;
  onFilter: (clause: string) => void;
  saving?: string;
}

interface Tip {
  x: number;
  y: number;
  lines: string[];
}

/** Fits the graph in view without blowing a small graph up past 1.5×. */
function fitClamped(cy: cytoscape.Core): void {
  if (cy.width() <= 0 || cy.height() <= 0 || cy.nodes().empty()) return;
  cy.fit(undefined, 30);
  if (cy.zoom() > 1.5) {
    cy.zoom(1.5);
    cy.center();
  }
}

/** The box a node takes with its label, in model coordinates (measured by Cytoscape). */
function boxOf(n: cytoscape.NodeSingular): Box {
  const p = n.position();
  const bb = n.boundingBox({ includeLabels: true, includeOverlays: false } as cytoscape.BoundingBoxOptions);
  const est = nodeBox(Number(n.data('size')) || 18, String(n.data('label') ?? ''));
  if (![bb.x1, bb.x2, bb.y1, bb.y2].every(Number.isFinite) || bb.w <= 0 || bb.h <= 0) return est;
  // The label may not be measured yet (no frame drawn): never smaller than the estimate.
  return {
    w: Math.max(bb.w, est.w),
    h: Math.max(bb.h, est.h),
    dx: (bb.x1 + bb.x2) / 2 - p.x,
    dy: Math.max((bb.y1 + bb.y2) / 2 - p.y, est.dy),
  };
}

function positionsOf(cy: cytoscape.Core): Record<string, Position> {
  const p: Record<string, Position> = {};
  cy.nodes().forEach((n) => {
    p[n.id()] = { ...n.position() };
  });
  return p;
}

/**
 * Moves nodes apart so that no two (circle and label) overlap. Nodes in `loose`
 * move first; the others move only when they overlap each other, and never when
 * `fixed`.
 */
function untangle(cy: cytoscape.Core, loose: Set<string>, fixed = false): void {
  const boxes: Record<string, Box> = {};
  cy.nodes().forEach((n) => {
    boxes[n.id()] = boxOf(n);
  });
  const before = positionsOf(cy);
  const after = separate(before, boxes, (id) => (loose.has(id) ? 0 : fixed ? Infinity : 1));
  cy.batch(() => {
    for (const [id, p] of Object.entries(after)) {
      const b = before[id];
      if (Math.abs(p.x - b.x) > 0.01 || Math.abs(p.y - b.y) > 0.01) cy.getElementById(id).position(p);
    }
  });
}

/** Places the nodes of `ids` (no position yet) beside their placed neighbours. */
function placeBeside(cy: cytoscape.Core, ids: Set<string>): void {
  const nodes: LayoutNode[] = cy.nodes().map((n) => ({ id: n.id(), box: boxOf(n), kind: n.data('kind') }));
  const edges = cy.edges().map((e) => ({ source: e.data('source') as string, target: e.data('target') as string }));
  const placed = positionsOf(cy);
  for (const id of ids) delete placed[id];
  const pos = placeNew(nodes, edges, placed);
  cy.batch(() => {
    for (const id of ids) cy.getElementById(id).position(pos[id]);
  });
}

/** A new graph from scratch: cose for four nodes or more, placeNew below that. */
function layoutAll(cy: cytoscape.Core): void {
  if (cy.nodes().length <= 3) {
    placeBeside(cy, new Set(cy.nodes().map((n) => n.id())));
    return;
  }
  cy.layout({ ...layoutOptions(), randomize: true } as cytoscape.LayoutOptions).run();
}

/** Positions rounded to whole units, as saved. */
function rounded(cy: cytoscape.Core): Record<string, Position> {
  const p: Record<string, Position> = {};
  cy.nodes().forEach((n) => {
    const { x, y } = n.position();
    p[n.id()] = { x: Math.round(x), y: Math.round(y) };
  });
  return p;
}

/** Pans just enough for node n (with its label) to be in view, when it fits. */
function keepInView(cy: cytoscape.Core, n: cytoscape.NodeSingular): void {
  const w = cy.width();
  const h = cy.height();
  const b = n.renderedBoundingBox({ includeLabels: true, includeOverlays: false } as cytoscape.BoundingBoxOptions);
  if (b.w > w || b.h > h) return;
  const m = 4;
  const dx = b.x1 < m ? m - b.x1 : b.x2 > w - m ? w - m - b.x2 : 0;
  const dy = b.y1 < m ? m - b.y1 : b.y2 > h - m ? h - m - b.y2 : 0;
  if (dx || dy) cy.panBy({ x: dx, y: dy });
}

/** True when no node is in view. */
function noneInView(cy: cytoscape.Core): boolean {
  const w = cy.width();
  const h = cy.height();
  return !cy.nodes().some((n) => {
    const b = n.renderedBoundingBox({ includeLabels: false, includeOverlays: false } as cytoscape.BoundingBoxOptions);
    return b.x2 > 0 && b.y2 > 0 && b.x1 < w && b.y1 < h;
  });
}

function layoutOptions(): cytoscape.LayoutOptions {
  return {
    name: 'cose',
    animate: false,
    randomize: false,
    nodeRepulsion: () => 20000,
    idealEdgeLength: () => 160,
    nodeOverlap: 20,
    componentSpacing: 80,
    padding: 30,
    fit: false,
  } as cytoscape.LayoutOptions;
}

export function NetworkMap({ data, positions, scope, onScope, onPositions, onFilter, saving }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const cyRef = useRef<cytoscape.Core | null>(null);
  const cb = useRef({ onFilter, onPositions });
  cb.current = { onFilter, onPositions };
  const [tip, setTip] = useState<Tip | null>(null);
  // True while the view is the automatic fit (no pan or zoom by the user since):
  // then other nodes or a resize of the map refit it.
  const autoView = useRef(true);
  // The saved position last applied to each node: a saved position is applied when it
  // changes (another scope, a save), not again on every refresh, so that a node moved
  // off another one stays where it was moved.
  const applied = useRef(new Map<string, string>());
  const [ready, setReady] = useState(false);
  const [loadErr, setLoadErr] = useState('');

  useEffect(() => {
    // Cytoscape is the largest dependency: it is loaded with the first map.
    let cy: cytoscape.Core | null = null;
    let ro: ResizeObserver | null = null;
    let dead = false;
    import('cytoscape').then(
      ({ default: cytoscapeLib }) => {
        if (dead || !box.current) return;
        cy = create(cytoscapeLib, box.current);
        ro = new ResizeObserver(() => {
          if (!cy) return;
          cy.resize();
          if (autoView.current) fitClamped(cy);
        });
        ro.observe(box.current);
        setReady(true);
      },
      (e: Error) => setLoadErr(`cannot load the map library: ${e.message}`),
    );
    return () => {
      dead = true;
      ro?.disconnect();
      cy?.destroy();
      cyRef.current = null;
    };
  }, []);

  function create(cytoscapeLib: typeof cytoscape, container: HTMLDivElement): cytoscape.Core {
    const cy = cytoscapeLib({
      container,
      style: stylesheet as unknown as cytoscape.StylesheetJson,
      minZoom: 0.1,
      maxZoom: 4,
      boxSelectionEnabled: false,
    });
    cyRef.current = cy;
    // Exposed for the end-to-end tests, which read the rendered graph model.
    (container as unknown as { __cy: cytoscape.Core }).__cy = cy;
    cy.on('dragfree', 'node', (e) => {
      // A node dropped onto another is moved off it (the others stay where they are).
      untangle(cy, new Set([e.target.id() as string]), true);
      keepInView(cy, e.target);
      cb.current.onPositions?.(rounded(cy));
    });
    cy.on('dragpan scrollzoom pinchzoom', () => {
      autoView.current = false;
    });
    cy.on('tap', 'node', (e) => cb.current.onFilter(nodeClause(e.target.data('ip'))));
    cy.on('tap', 'edge', (e) => cb.current.onFilter(edgeClause(e.target.data('source'), e.target.data('target'))));
    cy.on('mouseover', 'edge', (e) => e.target.addClass('hover'));
    cy.on('mouseout', 'edge', (e) => e.target.removeClass('hover'));
    cy.on('mouseover', 'node, edge', (e) => {
      const d = e.target.data();
      const pos = e.renderedPosition ?? e.target.renderedMidpoint?.() ?? { x: 0, y: 0 };
      const lines = e.target.isNode()
        ? [
            d.label,
            d.label !== d.ip ? d.ip : '',
            `${d.kind} · ${d.requests} requests · ${d.errors} errors · ${formatBytes(d.bytes)}`,
            'click: filter on this node',
          ]
        : [
            `${cy.getElementById(d.source).data('label')} → ${cy.getElementById(d.target).data('label')}`,
            `${d.protocol} · ${d.count} · ${d.errors} errors · ${formatBytes(d.bytes)}`,
            `p50 ${formatDuration(d.p50_us)} · p95 ${formatDuration(d.p95_us)}`,
            'click: filter on this edge',
          ];
      setTip({ x: pos.x, y: pos.y, lines: lines.filter(Boolean) });
    });
    cy.on('mouseout', 'node, edge', () => setTip(null));
    cy.on('pan zoom drag', () => setTip(null));
    return cy;
  }

  useEffect(() => {
    const cy = cyRef.current;
    if (!cy) return;
    const els = toElements(data, positions);
    const wanted = new Set(els.map((e) => e.data.id as string));
    const fresh: string[] = [];
    const restored = new Set<string>();
    const first = cy.elements().length === 0;
    let moved = false;
    let removed = false;
    cy.batch(() => {
      cy.elements().forEach((el) => {
        if (!wanted.has(el.id())) {
          removed ||= el.isNode();
          el.remove();
        }
      });
      for (const e of els) {
        const id = e.data.id as string;
        const ex = cy.getElementById(id);
        if (ex.nonempty()) {
          ex.data(e.data);
          const key = e.position ? `${e.position.x},${e.position.y}` : '';
          if (e.position && e.group === 'nodes' && !ex.grabbed() && applied.current.get(id) !== key) {
            applied.current.set(id, key);
            const p = ex.position();
            // (Positions are saved rounded: a sub-unit difference is the same place.)
            if (Math.abs(p.x - e.position.x) > 1 || Math.abs(p.y - e.position.y) > 1) {
              ex.position(e.position);
              restored.add(id);
              moved = true;
            }
          }
        } else {
          cy.add(e as cytoscape.ElementDefinition);
          if (e.group === 'nodes') {
            if (e.position) {
              applied.current.set(id, `${e.position.x},${e.position.y}`);
              restored.add(id);
            } else {
              applied.current.delete(id);
              fresh.push(id);
            }
          }
        }
      }
    });
    if (removed) setTip(null); // the hovered element may be gone (no mouseout comes)
    const added = fresh.length > 0 || restored.size > 0;
    if (fresh.length && fresh.length === cy.nodes().length) {
      // A new graph: automatic layout.
      layoutAll(cy);
    } else if (fresh.length) {
      // New nodes beside placed ones: next to their neighbours; placed nodes stay put.
      placeBeside(cy, new Set(fresh));
    }
    // Whatever placed them (layout, saved positions from other graphs, old positions
    // of nodes shown again), no two nodes may overlap: new ones move first.
    untangle(cy, new Set(fresh));
    if (first || ((added || removed || moved) && (autoView.current || noneInView(cy)))) {
      // First draw, other nodes, or saved positions arrived (another scope): show them
      // all, unless the user has zoomed or panned to something still in view.
      fitClamped(cy);
      autoView.current = true;
    }
  }, [data, positions, ready]);

  const relayout = () => {
    const cy = cyRef.current;
    if (!cy) return;
    layoutAll(cy);
    untangle(cy, new Set(cy.nodes().map((n) => n.id())));
    fitClamped(cy);
    autoView.current = true;
    onPositions?.(rounded(cy));
  };
  const fit = () => {
    const cy = cyRef.current;
    if (!cy) return;
    fitClamped(cy);
    autoView.current = true;
  };

  return (
    <div class="map">
      <div class="map-tools">
        <button class="btn small" onClick={fit} title="fit the map in view">
          Fit
        </button>
        {onPositions && (
          <button class="btn small" onClick={relayout} title="automatic layout again (saves the positions)">
            Re-layout
          </button>
        )}
        {onScope && (
          <label class="inline" title="where dragged positions are saved">
            positions
            <select value={scope} onChange={(e) => onScope((e.target as HTMLSelectElement).value as Scope)}>
              <option value="user">mine</option>
              <option value="team">team</option>
            </select>
          </label>
        )}
        {saving && <span class="muted small">{saving}</span>}
        <span class="map-legend">
          <i class="sw" style={{ background: COLORS.ok }} /> ok <i class="sw" style={{ background: COLORS.slow }} /> p95≥200ms{' '}
          <i class="sw" style={{ background: COLORS.slower }} /> p95≥1s <i class="sw" style={{ background: COLORS.warnError }} />{' '}
          errors <i class="sw" style={{ background: COLORS.error }} /> ≥5% errors · width = volume · — http ‒ ‒ tls ··· tcp/dns
        </span>
      </div>
      {loadErr && <div class="state error">{loadErr}</div>}
      <div ref={box} class="map-canvas" data-testid="map" />
      {tip && (
        <div class="tip" style={{ left: `${tip.x + 14}px`, top: `${tip.y + 40}px` }}>
          {tip.lines.map((l, i) => (
            <div class={i === 0 ? 'tip-title' : i === tip.lines.length - 1 ? 'muted' : ''}>{l}</div>
          ))}
        </div>
      )}
    </div>
  );
}
