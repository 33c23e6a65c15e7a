// The timeline: requests per bucket (errors in red), p95 latency, and the capture
// quality line under it. Drag to brush a new window; the wheel zooms around the
// pointer, from days down to milliseconds (time travel).

import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Timeline as TimelineData } from '../api';
import { quality, qualityText } from '../quality';
import { brush, formatDuration, formatTsShort, parseTs, zoom, type Window } from '../time';
import { plotArea, timeAxis, valueAxis } from './charts';
import { formatCount } from '../format';

interface Props {
  window: Window;
  data: TimelineData | undefined;
  onWindow: (w: Window) => void;
  height?: number;
  /** Exchanges in the window (HTTP, TLS/TCP connections without HTTP, DNS queries). */
  total?: number;
}

export function toSeries(d: TimelineData | undefined): [number[], number[], number[], (number | null)[]] {
  const xs: number[] = [];
  const counts: number[] = [];
  const errs: number[] = [];
  const p95: (number | null)[] = [];
  for (const b of d?.buckets ?? []) {
    xs.push(parseTs(b.ts));
    counts.push(b.count);
    errs.push(b.errors);
    p95.push(b.count > 0 ? b.p95_us / 1000 : null);
  }
  return [xs, counts, errs, p95];
}

export function Timeline({ window: w, data, onWindow, height = 120, total }: Props) {
  const root = useRef<HTMLDivElement>(null);
  const readout = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const cb = useRef({ onWindow, w, data });
  cb.current = { onWindow, w, data };
  const [area, setArea] = useState({ left: 0, width: 0 });

  useEffect(() => {
    const el = root.current!;
    const bars = uPlot.paths.bars!({ size: [0.92, Infinity], align: 1 });
    const opts: uPlot.Options = {
      width: el.clientWidth || 800,
      height,
      legend: { show: false },
      padding: [6, 8, 0, 0],
      cursor: {
        drag: { x: true, y: false, setScale: false },
        points: { show: false },
      },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      scales: {
        x: { time: false, range: (_u, min, max) => [min, max] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] },
        lat: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 1) * 1.15)] },
      },
      axes: [timeAxis(), valueAxis('y', 3, (v) => formatCount(v)), valueAxis('lat', 1, (v) => `${v}ms`)],
      series: [
        {},
        // Bars never get point markers (uPlot adds them on sparse data: dots along the zero line).
        { label: 'requests', scale: 'y', fill: 'rgba(61,113,217,0.55)', stroke: '#3d71d9', width: 0, paths: bars, points: { show: false } },
        { label: 'errors', scale: 'y', fill: 'rgba(242,73,92,0.85)', stroke: '#f2495c', width: 0, paths: bars, points: { show: false } },
        { label: 'p95', scale: 'lat', stroke: '#ff9830', width: 1.25, spanGaps: false },
      ],
      hooks: {
        setSelect: [
          (u) => {
            const s = u.select;
            if (s.width > 3) {
              const a = u.posToVal(s.left, 'x');
              const b = u.posToVal(s.left + s.width, 'x');
              cb.current.onWindow(brush(a, b));
            }
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          },
        ],
        setCursor: [
          (u) => {
            const i = u.cursor.idx;
            const r = readout.current;
            if (!r) return;
            const d = cb.current.data;
            if (i === null || i === undefined || !d || !d.buckets[i]) {
              r.textContent = '';
              return;
            }
            const b = d.buckets[i];
            r.textContent = `${formatTsShort(parseTs(b.ts))}  ·  ${b.count} req  ·  ${b.errors} err  ·  p50 ${formatDuration(b.p50_us)}  ·  p95 ${formatDuration(b.p95_us)}`;
          },
        ],
        setSize: [(u) => setArea(plotArea(u))],
        ready: [(u) => setArea(plotArea(u))],
      },
    };
    const u = new uPlot(opts, [[], [], [], []], el);
    plot.current = u;
    // Wheel: zoom around the pointer; the fetch is debounced while the wheel turns.
    let pending: Window | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const base = pending ?? cb.current.w;
      const at = u.posToVal(e.offsetX, 'x');
      pending = zoom(base, e.deltaY > 0 ? 1.6 : 1 / 1.6, at);
      u.setScale('x', { min: pending.from, max: pending.to });
      clearTimeout(timer);
      timer = setTimeout(() => {
        const p = pending!;
        pending = null;
        cb.current.onWindow(p);
      }, 350);
    };
    u.over.addEventListener('wheel', onWheel, { passive: false });
    const ro = new ResizeObserver(() => {
      const width = el.clientWidth;
      if (width > 0 && width !== u.width) u.setSize({ width, height });
    });
    ro.observe(el);
    return () => {
      clearTimeout(timer);
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [height]);

  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    u.setData(toSeries(data) as uPlot.AlignedData, true);
    u.setScale('x', { min: w.from, max: w.to });
  }, [data, w.from, w.to]);

  const span = w.to - w.from;
  const q = data?.quality ?? [];
  const step = data?.step_us || span / Math.max(1, q.length);
  return (
    <div class="timeline">
      <div ref={root} class="timeline-plot" data-testid="timeline" />
      <svg class="quality" style={{ marginLeft: `${area.left}px`, width: `${area.width}px` }} data-testid="quality">
        <rect class="q-none" x="0" y="0" width="100%" height="6" />
        {area.width > 0 &&
          q.map((b) => {
            const t = parseTs(b.ts);
            const x = ((t - w.from) / span) * area.width;
            const wd = Math.max(1, (step / span) * area.width);
            if (x + wd < 0 || x > area.width) return null;
            const cls = quality(b);
            return (
              <rect class={`q-${cls}`} x={Math.max(0, x)} y="0" width={wd} height="6">
                <title>{`${formatTsShort(t)} capture ${cls}: ${qualityText(b)}`}</title>
              </rect>
            );
          })}
      </svg>
      <div class="timeline-foot">
        <span class="legend">
          {total !== undefined && (
            <span class="total" data-testid="timeline-total" title="HTTP exchanges, TLS/TCP connections without HTTP, DNS queries">
              {total} in window ·
            </span>
          )}
          <i class="sw req" /> exchanges <i class="sw err" /> errors <i class="sw lat" /> p95 latency
          <span class="qlegend">
            capture: <i class="sw q-good" /> ok <i class="sw q-degraded" /> degraded <i class="sw q-bad" /> lost{' '}
            <i class="sw q-none" /> no status
          </span>
        </span>
        <span ref={readout} class="readout" />
      </div>
    </div>
  );
}
