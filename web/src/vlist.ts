// Virtual scrolling arithmetic for fixed-height rows.

export interface Range {
  start: number; // first rendered row
  end: number; // one past the last rendered row
  padTop: number; // px above the first rendered row
  padBottom: number; // px below the last rendered row
}

export function visibleRange(scrollTop: number, viewport: number, rowHeight: number, count: number, overscan = 8): Range {
  if (count <= 0 || rowHeight <= 0) return { start: 0, end: 0, padTop: 0, padBottom: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const visible = Math.ceil(Math.max(0, viewport) / rowHeight) + 1;
  const start = Math.max(0, Math.min(count - 1, first - overscan));
  const end = Math.min(count, first + visible + overscan);
  return { start, end, padTop: start * rowHeight, padBottom: (count - end) * rowHeight };
}

/** The scrollTop that brings row `index` into view (unchanged if it already is). */
export function scrollToRow(index: number, scrollTop: number, viewport: number, rowHeight: number): number {
  const top = index * rowHeight;
  if (top < scrollTop) return top;
  if (top + rowHeight > scrollTop + viewport) return top + rowHeight - viewport;
  return scrollTop;
}

/** Whether more rows should be fetched: the viewport is within `threshold` rows of the end. */
export function nearEnd(scrollTop: number, viewport: number, rowHeight: number, count: number, threshold = 20): boolean {
  return scrollTop + viewport >= (count - threshold) * rowHeight;
}
