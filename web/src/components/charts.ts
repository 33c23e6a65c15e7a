// uPlot helpers shared by the timeline and the capture-status charts: an x axis in
// µs since the epoch with UTC ticks from 1 µs to days (uPlot's own time axis stops
// at milliseconds).

import type uPlot from 'uplot';
import { formatTick, ticks } from '../time';

export const AXIS_STROKE = '#8e8e8e';
export const GRID = { stroke: '#2c3235', width: 1 };

function tickCount(u: uPlot): number {
  const w = u.over ? u.over.clientWidth || u.width : u.width;
  return Math.max(2, Math.floor(w / 90));
}

export function timeAxis(): uPlot.Axis {
  return {
    stroke: AXIS_STROKE,
    grid: GRID,
    ticks: { stroke: '#2c3235', width: 1, size: 4 },
    space: 80,
    size: 28,
    font: '11px system-ui, sans-serif',
    splits: (u, _i, min, max) => ticks(min, max, tickCount(u)).values,
    values: (u, splits) => {
      const min = u.scales.x.min ?? 0;
      const max = u.scales.x.max ?? 0;
      const { step } = ticks(min, max, tickCount(u));
      return splits.map((v) => formatTick(v, step));
    },
  };
}

export function valueAxis(scale?: string, side?: 1 | 3, fmt?: (v: number) => string): uPlot.Axis {
  return {
    scale,
    side,
    stroke: AXIS_STROKE,
    grid: side === 1 ? { show: false } : GRID,
    ticks: { show: false },
    size: 46,
    font: '11px system-ui, sans-serif',
    values: fmt ? (_u, splits) => splits.map(fmt) : undefined,
  };
}

/** Plot-area geometry in CSS px relative to the chart root (for overlays). */
export function plotArea(u: uPlot): { left: number; width: number } {
  const over = u.over;
  return { left: over.offsetLeft, width: over.clientWidth };
}
