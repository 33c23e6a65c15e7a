// Capture status per agent: the latest report (captured, filtered, dropped,
// overflow, uploads, parse lag) and the counters over time (uPlot).

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import type { AgentStatus, StatusPoint } from '../api';
import { plotArea, timeAxis, valueAxis } from '../components/charts';
import { Empty, ErrorBox, Spinner, useAsync } from '../components/common';
import { TimeBar } from '../components/TimeBar';
import { useApp } from '../context';
import { formatBytes, formatCount } from '../format';
import { formatHash } from '../route';
import { exploreFromParams, exploreToParams } from '../route';
import { formatDuration, formatTsShort, nowUs, parseTs, relativeWindow, SECOND, type Window } from '../time';
import { LIVE_EVERY_MS } from './Explore';

export const STATUS_SERIES = [
  { key: 'captured', color: '#73bf69' },
  { key: 'filtered', color: '#8e8e8e' },
  { key: 'dropped', color: '#f2495c' },
  { key: 'overflow', color: '#ff9830' },
] as const;

/** Splits the series per agent, sorted by time. */
export function seriesByAgent(points: StatusPoint[]): Map<string, StatusPoint[]> {
  const m = new Map<string, StatusPoint[]>();
  for (const p of points) {
    const a = m.get(p.agent) ?? [];
    a.push(p);
    m.set(p.agent, a);
  }
  for (const a of m.values()) a.sort((x, y) => parseTs(x.ts) - parseTs(y.ts));
  return m;
}

function AgentChart({ points, window: w }: { points: StatusPoint[]; window: Window }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [, setArea] = useState({ left: 0, width: 0 });
  useEffect(() => {
    const u = new uPlot(
      {
        width: el.current!.clientWidth || 600,
        height: 140,
        legend: { show: true, live: true },
        cursor: { drag: { x: false, y: false }, points: { size: 5 } },
        scales: {
          x: { time: false, range: (_u, a, b) => [a, b] },
          y: { range: (_u, _a, b) => [0, Math.max(1, b * 1.1)] },
          loss: { range: (_u, _a, b) => [0, Math.max(1, b * 1.1)] },
        },
        axes: [timeAxis(), valueAxis('y', 3, (v) => formatCount(v)), valueAxis('loss', 1, (v) => formatCount(v))],
        series: [
          { label: 'time', value: (_u, v) => (v === null || v === undefined ? '–' : formatTsShort(v)) },
          ...STATUS_SERIES.map((s) => ({
            label: s.key,
            scale: s.key === 'dropped' || s.key === 'overflow' ? 'loss' : 'y',
            stroke: s.color,
            width: 1.5,
            points: { show: true, size: 3 },
          })),
        ],
        hooks: { setSize: [(x: uPlot) => setArea(plotArea(x))] },
      },
      [[], [], [], [], []],
      el.current!,
    );
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const width = el.current?.clientWidth ?? 0;
      if (width > 0 && width !== u.width) u.setSize({ width, height: 140 });
    });
    ro.observe(el.current!);
    return () => {
      ro.disconnect();
      u.destroy();
    };
  }, []);
  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    const xs = points.map((p) => parseTs(p.ts));
    u.setData([xs, ...STATUS_SERIES.map((s) => points.map((p) => p[s.key]))] as uPlot.AlignedData, true);
    u.setScale('x', { min: w.from, max: w.to });
  }, [points, w.from, w.to]);
  return <div ref={el} class="status-chart" />;
}

function health(a: AgentStatus, now: number): { cls: string; text: string } {
  const age = now - parseTs(a.last_seen);
  if (age > 120 * SECOND) return { cls: 'st-err', text: `silent for ${formatDuration(age)}` };
  if (a.dropped > 0 || a.overflow > 0 || a.errors > 0) return { cls: 'st-warn', text: 'losing data' };
  return { cls: 'st-ok', text: 'ok' };
}

export function StatusPage({ params }: { params: URLSearchParams }) {
  const { api, navigate } = useApp();
  const hashKey = params.toString();
  const st = useMemo(() => exploreFromParams(params, nowUs()), [hashKey]);
  const [tickNow, setTickNow] = useState(nowUs());
  const [live, setLive] = useState(true);
  const win = useMemo(() => (st.rel ? relativeWindow(st.rel, tickNow) : { from: st.from, to: st.to }), [st.rel, st.from, st.to, tickNow]);
  useEffect(() => {
    if (!st.rel || !live) return;
    const t = setInterval(() => document.visibilityState !== 'hidden' && setTickNow(nowUs()), LIVE_EVERY_MS);
    return () => clearInterval(t);
  }, [st.rel, live]);
  const status = useAsync((s) => api.status({ window: win, q: '' }, s), [win]);
  const go = (p: Partial<typeof st>) => navigate(formatHash(['status'], exploreToParams({ ...st, ...p })));
  const by = useMemo(() => seriesByAgent(status.data?.series ?? []), [status.data]);
  const now = nowUs();
  return (
    <div class="page status-page">
      <div class="page-head">
        <h2>Capture status</h2>
        <span class="muted small">
          every agent reports every 20 s: packets captured, filtered by the capture filter, dropped by the kernel, lost to spool overflow (right axis)
        </span>
      </div>
      <TimeBar
        window={win}
        rel={st.rel}
        live={live}
        onLive={setLive}
        onRel={(rel) => (setTickNow(nowUs()), go({ rel }))}
        onWindow={(w) => go({ rel: '', from: w.from, to: w.to })}
      />
      {status.error && <ErrorBox error={status.error} />}
      {!status.data && !status.error && <Spinner />}
      {status.data && status.data.agents.length === 0 && <Empty>No agent has reported in this window.</Empty>}
      {status.data && status.data.agents.length > 0 && (
        <>
          <table class="grid" data-testid="agents">
            <thead>
              <tr>
                <th>agent</th>
                <th>health</th>
                <th>last seen</th>
                <th class="num">streams</th>
                <th class="num">captured</th>
                <th class="num">filtered</th>
                <th class="num">dropped</th>
                <th class="num">overflow</th>
                <th class="num">segments</th>
                <th class="num">uploaded</th>
                <th class="num">errors</th>
                <th class="num">parse lag</th>
              </tr>
            </thead>
            <tbody>
              {status.data.agents.map((a) => {
                const h = health(a, now);
                return (
                  <tr>
                    <td>{a.agent}</td>
                    <td class={h.cls}>{h.text}</td>
                    <td>{formatTsShort(parseTs(a.last_seen))}</td>
                    <td class="num">{a.streams}</td>
                    <td class="num">{formatCount(a.captured)}</td>
                    <td class="num">{formatCount(a.filtered)}</td>
                    <td class={`num ${a.dropped ? 'st-err' : ''}`}>{formatCount(a.dropped)}</td>
                    <td class={`num ${a.overflow ? 'st-warn' : ''}`}>{formatCount(a.overflow)}</td>
                    <td class="num">{formatCount(a.segments_uploaded)}</td>
                    <td class="num">{formatBytes(a.bytes_uploaded)}</td>
                    <td class={`num ${a.errors ? 'st-err' : ''}`}>{a.errors}</td>
                    <td class="num">{a.parse_lag_s < 0 ? '–' : formatDuration(a.parse_lag_s * SECOND)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <div class="charts">
            {status.data.agents.map((a) => (
              <div class="chart-card">
                <div class="chart-title">{a.agent}</div>
                {(by.get(a.agent) ?? []).length === 0 ? (
                  <Empty>No reports in this window.</Empty>
                ) : (
                  <AgentChart points={by.get(a.agent) ?? []} window={win} />
                )}
              </div>
            ))}
          </div>
        </>
      )}
    </div>
  );
}
