// The network map (Cytoscape.js): automatic layout, nodes named by host name,
// edges weighted by volume and coloured by errors/latency. Dragged positions are
// saved per user or team; clicking a node or an edge filters on it.

import type cytoscape from 'cytoscape';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { MapData, Position, Scope } from '../api';
import { formatBytes } from '../format';
import { edgeClause, nodeClause } from '../filter';
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
  cy.fit(undefined, 30);
  if (cy.zoom() > 1.5) {
    cy.zoom(1.5);
    cy.center();
  }
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
  // Set once the user dragged a node here: their own moves never refit the view.
  const dragged = useRef(false);
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
        ro = new ResizeObserver(() => cy?.resize());
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
    const all = () => {
      const p: Record<string, Position> = {};
      cy.nodes().forEach((n) => {
        const { x, y } = n.position();
        p[n.id()] = { x: Math.round(x), y: Math.round(y) };
      });
      return p;
    };
    cy.on('dragfree', 'node', () => {
      dragged.current = true;
      cb.current.onPositions?.(all());
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
    const first = cy.elements().length === 0;
    let moved = false;
    cy.batch(() => {
      cy.elements().forEach((el) => {
        if (!wanted.has(el.id())) el.remove();
      });
      for (const e of els) {
        const id = e.data.id as string;
        const ex = cy.getElementById(id);
        if (ex.nonempty()) {
          ex.data(e.data);
          if (e.position && e.group === 'nodes' && !ex.grabbed()) {
            const p = ex.position();
            if (p.x !== e.position.x || p.y !== e.position.y) {
              ex.position(e.position);
              moved = true;
            }
          }
        } else {
          cy.add(e as cytoscape.ElementDefinition);
          if (e.group === 'nodes' && !e.position) fresh.push(id);
        }
      }
    });
    if (fresh.length) {
      // Lay out the new nodes only; nodes already placed (saved or shown) stay put.
      const keep = cy.nodes().filter((n) => !fresh.includes(n.id()));
      keep.lock();
      const l = cy.layout({ ...layoutOptions(), randomize: keep.length === 0 } as cytoscape.LayoutOptions);
      l.one('layoutstop', () => {
        keep.unlock();
        if (first || keep.length === 0) fitClamped(cy);
      });
      l.run();
    } else if (first || (moved && !dragged.current)) {
      // First draw, or saved positions arrived (another scope): show them all.
      fitClamped(cy);
    }
  }, [data, positions, ready]);

  const relayout = () => {
    const cy = cyRef.current;
    if (!cy) return;
    const l = cy.layout({ ...layoutOptions(), randomize: true } as cytoscape.LayoutOptions);
    l.one('layoutstop', () => {
      fitClamped(cy);
      const p: Record<string, Position> = {};
      cy.nodes().forEach((n) => {
        const { x, y } = n.position();
        p[n.id()] = { x: Math.round(x), y: Math.round(y) };
      });
      onPositions?.(p);
    });
    l.run();
  };

  return (
    <div class="map">
      <div class="map-tools">
        <button class="btn small" onClick={() => cyRef.current && fitClamped(cyRef.current)} title="fit the map in view">
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
