// The communications list: virtualised rows (fixed height), pages fetched with the
// API cursor as the user scrolls, sortable by time, duration and status (the sorts
// the API offers), keyboard navigation (↑/↓, PgUp/PgDn, Home/End, Enter).

import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { parseError, type Sort, type Summary } from '../api';
import { formatBytes } from '../format';
import { formatDuration, formatTsShort, parseTs } from '../time';
import { nearEnd, scrollToRow, visibleRange } from '../vlist';

const ROW = 24;

interface Props {
  items: Summary[];
  hasMore: boolean;
  loadingMore: boolean;
  onMore: () => void;
  sort: Sort;
  onSort: (s: Sort) => void;
  sel: string;
  /** Called with the exchange's id and ts (the detail's lookup hint). */
  onSelect: (id: string, ts: string) => void;
  /** Show the date in the time column (windows longer than a day). */
  showDate?: boolean;
}

interface Col {
  key: string;
  label: string;
  sort?: 'ts' | 'duration_us' | 'status';
  cls: string;
}

const COLS: Col[] = [
  { key: 'ts', label: 'Time (UTC)', sort: 'ts', cls: 'c-ts' },
  { key: 'client', label: 'Client', cls: 'c-client' },
  { key: 'server', label: 'Server', cls: 'c-server' },
  { key: 'method', label: 'Method', cls: 'c-method' },
  { key: 'path', label: 'Path', cls: 'c-path' },
  { key: 'status', label: 'Status', sort: 'status', cls: 'c-status' },
  { key: 'duration', label: 'Duration', sort: 'duration_us', cls: 'c-dur' },
  { key: 'size', label: 'Resp', cls: 'c-size' },
];

export function statusClass(s: Summary): string {
  if (s.status === 0) return parseError(s) ? 'st-err' : 'st-none';
  if (s.error || s.status >= 500) return 'st-err';
  if (s.status >= 400) return 'st-warn';
  if (s.status >= 300) return 'st-redirect';
  return 'st-ok';
}

export function CommList({ items, hasMore, loadingMore, onMore, sort, onSort, sel, onSelect, showDate }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState(0);
  const [vh, setVh] = useState(400);

  useLayoutEffect(() => {
    const el = box.current!;
    const ro = new ResizeObserver(() => setVh(el.clientHeight));
    ro.observe(el);
    setVh(el.clientHeight);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    if (hasMore && !loadingMore && nearEnd(scroll, vh, ROW, items.length)) onMore();
  }, [scroll, vh, items.length, hasMore, loadingMore]);

  const idx = items.findIndex((i) => i.id === sel);
  useEffect(() => {
    const el = box.current;
    if (!el || idx < 0) return;
    const top = scrollToRow(idx, el.scrollTop, el.clientHeight - ROW, ROW);
    if (top !== el.scrollTop) el.scrollTop = top;
  }, [idx]);

  const onKey = (e: KeyboardEvent) => {
    if (!items.length) return;
    const page = Math.max(1, Math.floor(vh / ROW) - 1);
    let next = idx;
    switch (e.key) {
      case 'ArrowDown':
        next = idx < 0 ? 0 : Math.min(items.length - 1, idx + 1);
        break;
      case 'ArrowUp':
        next = idx < 0 ? 0 : Math.max(0, idx - 1);
        break;
      case 'PageDown':
        next = Math.min(items.length - 1, Math.max(0, idx) + page);
        break;
      case 'PageUp':
        next = Math.max(0, idx - page);
        break;
      case 'Home':
        next = 0;
        break;
      case 'End':
        next = items.length - 1;
        break;
      case 'Enter':
        if (idx >= 0) onSelect(items[idx].id, items[idx].ts);
        else onSelect(items[0].id, items[0].ts);
        e.preventDefault();
        return;
      default:
        return;
    }
    e.preventDefault();
    onSelect(items[next].id, items[next].ts);
  };

  const r = visibleRange(scroll, vh, ROW, items.length);
  const sortKey = sort.replace('-', '');
  const desc = sort.startsWith('-');
  return (
    <div class={`list ${showDate ? 'with-date' : ''}`}>
      <div class="list-head" role="row">
        {COLS.map((c) => (
          <div
            class={`${c.cls} ${c.sort ? 'sortable' : ''} ${c.sort === sortKey ? 'sorted' : ''}`}
            role="columnheader"
            title={c.sort ? 'sort' : undefined}
            aria-sort={c.sort === sortKey ? (desc ? 'descending' : 'ascending') : undefined}
            onClick={() => {
              if (!c.sort) return;
              onSort((c.sort === sortKey ? (desc ? c.sort : `-${c.sort}`) : `-${c.sort}`) as Sort);
            }}
          >
            {c.label}
            {c.sort === sortKey ? (desc ? ' ▼' : ' ▲') : ''}
          </div>
        ))}
      </div>
      <div
        ref={box}
        class="list-body"
        tabIndex={0}
        role="grid"
        aria-label="communications"
        data-testid="list"
        onScroll={(e) => setScroll((e.target as HTMLDivElement).scrollTop)}
        onKeyDown={onKey}
      >
        <div style={{ height: `${r.padTop}px` }} />
        {items.slice(r.start, r.end).map((s) => (
          <div
            key={s.id}
            role="row"
            class={`row ${s.id === sel ? 'selected' : ''} ${s.complete ? '' : 'incomplete'}`}
            data-id={s.id}
            onClick={() => {
              onSelect(s.id, s.ts);
              box.current?.focus();
            }}
          >
            <div class="c-ts" title={s.ts}>
              {formatTsShort(parseTs(s.ts)).slice(showDate ? 5 : 11)}
            </div>
            <div class="c-client" title={`${s.client_ip}:${s.client_port}`}>
              {s.client_name || s.client_ip}
            </div>
            <div class="c-server" title={`${s.server_ip}:${s.server_port}`}>
              {s.tls ? <span class="badge">TLS</span> : null}
              {s.server_name || s.host || s.server_ip}
            </div>
            <div class="c-method">{s.method}</div>
            <div class="c-path" title={s.path}>
              {s.path}
            </div>
            <div class={`c-status ${statusClass(s)}`} title={parseError(s) || (s.status ? undefined : 'no response')}>
              {s.status || (parseError(s) ? 'err' : '–')}
            </div>
            <div class="c-dur">{formatDuration(s.duration_us)}</div>
            <div class="c-size">{formatBytes(s.resp_body_bytes)}</div>
          </div>
        ))}
        <div style={{ height: `${r.padBottom}px` }} />
        {loadingMore && <div class="list-more">loading more…</div>}
      </div>
    </div>
  );
}
