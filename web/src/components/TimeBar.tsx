// The time toolbar: relative presets (live), the absolute window, pan and zoom
// buttons, and "find data" for lakes whose data is not recent.

import { useState } from 'preact/hooks';
import { formatDuration, formatTs, formatWindow, pan, parseTs, PRESETS, zoom, type Window } from '../time';
import { Modal } from './common';

interface Props {
  window: Window;
  rel: string;
  live: boolean;
  onLive: (b: boolean) => void;
  onRel: (rel: string) => void;
  onWindow: (w: Window) => void;
  onFindData?: () => void;
  finding?: boolean;
  refreshing?: boolean;
}

export function TimeBar({ window: w, rel, live, onLive, onRel, onWindow, onFindData, finding, refreshing }: Props) {
  const [edit, setEdit] = useState(false);
  return (
    <div class="timebar">
      <select
        aria-label="time range"
        data-testid="preset"
        value={rel || 'custom'}
        onChange={(e) => {
          const v = (e.target as HTMLSelectElement).value;
          if (v !== 'custom') onRel(v);
        }}
      >
        {PRESETS.map((p) => (
          <option value={p}>Last {p}</option>
        ))}
        <option value="custom" disabled={!!rel}>
          Custom
        </option>
      </select>
      <button class="btn small" title="back in time" onClick={() => onWindow(pan(w, -0.5))}>
        ◀
      </button>
      <button class="window-label" data-testid="window" title="edit the window" onClick={() => setEdit(true)}>
        {formatWindow(w)} <span class="muted">({formatDuration(w.to - w.from)})</span>
      </button>
      <button class="btn small" title="forward in time" onClick={() => onWindow(pan(w, 0.5))}>
        ▶
      </button>
      <button class="btn small" title="zoom in (or drag on the timeline, or use the wheel)" onClick={() => onWindow(zoom(w, 0.5))}>
        +
      </button>
      <button class="btn small" data-testid="zoom-out" title="zoom out" onClick={() => onWindow(zoom(w, 2))}>
        −
      </button>
      {rel ? (
        <label class="inline live" title="refresh every 5 s while the window ends now">
          <input type="checkbox" checked={live} onChange={(e) => onLive((e.target as HTMLInputElement).checked)} />
          <span class={`dot ${live ? 'on' : ''} ${refreshing ? 'pulse' : ''}`} /> Live
        </label>
      ) : (
        <button class="btn small" title="back to the last hour, live" onClick={() => onRel('1h')}>
          Now
        </button>
      )}
      {onFindData && (
        <button class="btn small" disabled={finding} title="show the time range that holds data" onClick={onFindData}>
          {finding ? 'Searching…' : 'Find data'}
        </button>
      )}
      {edit && <WindowEditor window={w} onClose={() => setEdit(false)} onWindow={(x) => (setEdit(false), onWindow(x))} />}
    </div>
  );
}

function WindowEditor({ window: w, onClose, onWindow }: { window: Window; onClose: () => void; onWindow: (w: Window) => void }) {
  const [from, setFrom] = useState(formatTs(w.from));
  const [to, setTo] = useState(formatTs(w.to));
  const [err, setErr] = useState('');
  const submit = (e: Event) => {
    e.preventDefault();
    try {
      const a = parseTs(from);
      const b = parseTs(to);
      if (b <= a) throw new Error('"to" must be after "from"');
      onWindow({ from: a, to: b });
    } catch (x) {
      setErr((x as Error).message);
    }
  };
  return (
    <Modal title="Time window (UTC, RFC 3339)" onClose={onClose}>
      <form onSubmit={submit} class="form">
        <label>
          from
          <input value={from} onInput={(e) => setFrom((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          to
          <input value={to} onInput={(e) => setTo((e.target as HTMLInputElement).value)} />
        </label>
        {err && <div class="form-error">{err}</div>}
        <div class="form-actions">
          <button class="btn primary" type="submit">
            Apply
          </button>
        </div>
      </form>
    </Modal>
  );
}
