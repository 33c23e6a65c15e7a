// Sequence diagram (own small SVG renderer over sequence.ts): participants by name,
// calls in time order, click a call to open its detail.

import type { Sequence } from '../api';
import { callClass, layoutSequence } from '../sequence';
import { formatDuration, formatTs } from '../time';

interface Props {
  data: Sequence;
  sel: string;
  /** Called with the call's id and ts (the detail's lookup hint). */
  onSelect: (id: string, ts: string) => void;
}

export function SequenceDiagram({ data, sel, onSelect }: Props) {
  const l = layoutSequence(data);
  const bottom = l.height - 6;
  return (
    <div class="sequence" data-testid="sequence">
      <svg width={l.width} height={l.height} role="img" aria-label="sequence diagram">
        <defs>
          {['ok', 'warn', 'error', 'none'].map((c) => (
            <marker id={`arrow-${c}`} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class={`seq-arrow-${c}`} />
            </marker>
          ))}
        </defs>
        {l.participants.map((p) => (
          <g class="seq-participant" data-id={p.id}>
            <line x1={p.x} x2={p.x} y1={l.headerHeight - 4} y2={bottom} class="lifeline" />
            <rect x={p.x - p.width / 2} y={6} width={p.width} height={l.headerHeight - 12} rx="3" />
            <text x={p.x} y={l.headerHeight / 2 + 4} text-anchor="middle">
              <title>{p.ip}</title>
              {p.name.length > 34 ? p.name.slice(0, 33) + '…' : p.name}
            </text>
          </g>
        ))}
        {l.calls.map((c) => {
          const cls = callClass(c);
          const mid = c.self ? c.x1 + 40 : (c.x1 + c.x2) / 2;
          return (
            <g
              class={`seq-call ${cls} ${c.id === sel ? 'selected' : ''}`}
              data-id={c.id}
              data-testid="seq-call"
              data-label={c.label}
              data-ts={c.ts}
              onClick={() => onSelect(c.id, formatTs(c.ts))}
            >
              <rect class="hit" x="0" y={c.y - 18} width={l.width} height="32" />
              <text x="8" y={c.y + 2} class="offset">
                +{formatDuration(c.offset_us)}
              </text>
              {c.self ? (
                <path d={`M${c.x1},${c.y - 6} h30 v12 h-28`} class="msg" marker-end={`url(#arrow-${cls})`} />
              ) : (
                <line x1={c.x1} x2={c.x2} y1={c.y} y2={c.y} class="msg" marker-end={`url(#arrow-${cls})`} />
              )}
              <text x={c.self ? c.x1 + 36 : mid} y={c.y - 4} text-anchor={c.self ? 'start' : 'middle'} class="label">
                {c.label.length > 60 ? c.label.slice(0, 59) + '…' : c.label}
              </text>
              <text x={c.self ? c.x1 + 36 : Math.max(c.x1, c.x2) - 4} y={c.y + 12} text-anchor={c.self ? 'start' : 'end'} class="meta">
                {c.status || 'no response'} · {formatDuration(c.duration_us)}
              </text>
              <title>{`${c.label} → ${c.status || 'no response'} in ${formatDuration(c.duration_us)}`}</title>
            </g>
          );
        })}
      </svg>
    </div>
  );
}
