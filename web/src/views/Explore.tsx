// The explore page: filter bar, time bar, timeline with the quality line, the
// communications list, and on the right the network map, the sequence diagram or
// the detail of the selected communication. Live while the window ends now.

import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Field, MapData, Position, SavedView, Scope, Sort, Summary } from '../api';
import { ErrorBox, Empty, saveBlob, Spinner, useAsync } from '../components/common';
import { CommList } from '../components/CommList';
import { Detail } from '../components/Detail';
import { FilterBar } from '../components/FilterBar';
import { NetworkMap } from '../components/NetworkMap';
import { SequenceDiagram } from '../components/SequenceDiagram';
import { Timeline } from '../components/Timeline';
import { TimeBar } from '../components/TimeBar';
import { ViewsMenu } from '../components/ViewsMenu';
import { useApp } from '../context';
import { andClause } from '../filter';
import { exploreFromParams, exploreToParams, formatHash, type ExploreState, type Tab } from '../route';
import { canWrite } from '../session';
import { DAY, formatTs, HOUR, nowUs, parseTs, relativeWindow, windowAround, type Window } from '../time';

export const LIVE_EVERY_MS = 5000;
const PAGE = 200;

interface Props {
  params: URLSearchParams;
  /** Base path of the page in the hash (['explore'] or ['public', token]). */
  path: string[];
  /** Public-link mode: the filter is fixed by the shared view. */
  lockedQ?: boolean;
}

/** Values proposed after an operator, learned from the map. */
function valueHints(map: MapData | undefined): Record<string, string[]> {
  if (!map) return {};
  const names = map.nodes.map((n) => n.name).filter((n) => n && !/^[\d.:]+$/.test(n));
  const ips = map.nodes.map((n) => n.ip);
  const servers = map.nodes.filter((n) => n.kind !== 'client');
  return {
    host: servers.map((n) => n.name).filter(Boolean),
    server: [...servers.map((n) => n.name), ...servers.map((n) => n.ip)],
    client: [...names, ...ips],
    server_name: servers.map((n) => n.name),
    client_name: names,
    server_ip: servers.map((n) => n.ip),
    client_ip: ips,
  };
}

export function Explore({ params, path, lockedQ }: Props) {
  const { api, user, navigate, readOnly } = useApp();
  const hashKey = params.toString();
  // The clock of relative (live) windows advances only on ticks, so renders do not refetch.
  const [tickNow, setTickNow] = useState(nowUs());
  const [tick, setTick] = useState(0);
  const st: ExploreState = useMemo(() => exploreFromParams(params, nowUs()), [hashKey]);
  const win: Window = useMemo(
    () => (st.rel ? relativeWindow(st.rel, tickNow) : { from: st.from, to: st.to }),
    [st.rel, st.from, st.to, tickNow],
  );
  const [live, setLive] = useState(true);
  const isLive = !!st.rel && live;
  const selection = useMemo(() => ({ window: win, q: st.q }), [win, st.q]);

  const go = useCallback(
    (patch: Partial<ExploreState>, replace = false) => {
      const next = { ...st, ...patch };
      navigate(formatHash(path, exploreToParams(next)), replace);
    },
    [st, path, navigate],
  );
  const setWindow = (w: Window) => go({ rel: '', from: w.from, to: w.to });
  const setRel = (rel: string) => {
    setTickNow(nowUs());
    go({ rel });
  };
  const addFilter = (clause: string) => !lockedQ && go({ q: andClause(st.q, clause), sel: '', tab: st.tab === 'detail' ? 'map' : st.tab });

  // Live: every few seconds, move the window to now and refetch.
  useEffect(() => {
    if (!isLive) return;
    const t = setInterval(() => {
      if (document.visibilityState === 'hidden') return;
      setTickNow(nowUs());
      setTick((x) => x + 1);
    }, LIVE_EVERY_MS);
    return () => clearInterval(t);
  }, [isLive]);
  useEffect(() => setTickNow(nowUs()), [hashKey]);

  const fields = useAsync((s) => api.fields(s), []);
  const fieldList: Field[] = fields.data ?? [];
  const timeline = useAsync((s) => api.timeline(selection, undefined, s), [selection]);
  const map = useAsync((s) => api.map(selection, s), [selection], st.tab === 'map');
  const seq = useAsync((s) => api.sequence(selection, 200, s), [selection], st.tab === 'sequence');
  const [scope, setScope] = useState<Scope>('user');
  const positions = useAsync((s) => (readOnly ? Promise.resolve({}) : api.positions(scope, s)), [scope]);

  // Saving positions after a drag (debounced).
  const [saveMsg, setSaveMsg] = useState('');
  const saveTimer = useRef<ReturnType<typeof setTimeout>>();
  const [localPos, setLocalPos] = useState<Record<string, Position> | null>(null);
  useEffect(() => setLocalPos(null), [scope]);
  const onPositions = (p: Record<string, Position>) => {
    const merged = { ...(positions.data ?? {}), ...(localPos ?? {}), ...p };
    setLocalPos(merged);
    clearTimeout(saveTimer.current);
    saveTimer.current = setTimeout(() => {
      setSaveMsg('saving positions…');
      api.savePositions(scope, merged).then(
        () => setSaveMsg(`positions saved (${scope === 'user' ? 'mine' : 'team'})`),
        (e: Error) => setSaveMsg(`could not save positions: ${e.message}`),
      );
    }, 600);
  };

  // The list: first page on every selection/sort change or live tick, more on scroll.
  const [items, setItems] = useState<Summary[]>([]);
  const [next, setNext] = useState('');
  const [listErr, setListErr] = useState<Error | undefined>();
  const [listLoading, setListLoading] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const itemCount = useRef(0);
  itemCount.current = items.length;
  const listKey = `${formatTs(win.from)}|${formatTs(win.to)}|${st.q}|${st.sort}`;
  const lastKey = useRef('');
  const moreAbort = useRef<AbortController | null>(null);
  const listGen = useRef(0); // counts the lists shown (not the live refreshes of one)
  useEffect(() => {
    const ac = new AbortController();
    const sameQuery = lastKey.current.split('|').slice(2).join('|') === `${st.q}|${st.sort}`;
    const liveMerge = isLive && sameQuery && st.sort === '-ts' && lastKey.current !== '';
    if (!liveMerge && lastKey.current !== listKey) {
      // Another list: a page of the previous one still on its way must not land in
      // it, and its cursor must not be used with this selection.
      listGen.current++;
      moreAbort.current?.abort();
      setLoadingMore(false);
      setNext('');
    }
    lastKey.current = listKey;
    setListLoading(true);
    api.communications(selection, { limit: PAGE, sort: st.sort }, ac.signal).then(
      (page) => {
        if (ac.signal.aborted) return;
        setListErr(undefined);
        setListLoading(false);
        if (liveMerge) {
          // Keep what was scrolled in; put the new rows on top.
          setItems((old) => {
            if (old.length <= PAGE) return page.items ?? [];
            const seen = new Set((page.items ?? []).map((i) => i.id));
            return [...(page.items ?? []), ...old.filter((i) => !seen.has(i.id))];
          });
          if (itemCount.current <= PAGE) setNext(page.next ?? '');
        } else {
          setItems(page.items ?? []);
          setNext(page.next ?? '');
        }
      },
      (e: Error) => {
        if (ac.signal.aborted || e.name === 'AbortError') return;
        setListLoading(false);
        setListErr(e);
        if (!liveMerge) setItems([]);
      },
    );
    return () => ac.abort();
  }, [listKey, tick]);
  const more = () => {
    // (Asked for before the list effect ran for a new selection: next is the old list's cursor.)
    if (!next || loadingMore || lastKey.current !== listKey) return;
    const ac = new AbortController();
    moreAbort.current = ac;
    const gen = listGen.current;
    const stale = () => ac.signal.aborted || listGen.current !== gen;
    setLoadingMore(true);
    api.communications(selection, { limit: PAGE, sort: st.sort, cursor: next }, ac.signal).then(
      (page) => {
        if (stale()) return;
        setItems((old) => [...old, ...(page.items ?? [])]);
        setNext(page.next ?? '');
        setLoadingMore(false);
      },
      (e: Error) => {
        if (stale() || e.name === 'AbortError') return;
        setListErr(e);
        setLoadingMore(false);
      },
    );
  };

  // A lake whose newest data is older than the default window: jump to the data once.
  const [finding, setFinding] = useState(false);
  const [notice, setNotice] = useState('');
  // A notice belongs to the window it was given for: the next navigation clears it.
  const keepNotice = useRef(false);
  useEffect(() => {
    if (keepNotice.current) keepNotice.current = false;
    else setNotice('');
  }, [hashKey]);
  // The URL as last rendered: an automatic jump whose answers come after the user
  // went elsewhere is dropped.
  const hashNow = useRef(hashKey);
  hashNow.current = hashKey;
  const findData = async (auto: boolean) => {
    const startedAt = hashNow.current;
    setFinding(true);
    try {
      const all = { window: { from: parseTs('1990-01-01T00:00:00Z'), to: nowUs() + DAY }, q: st.q };
      const [newest, oldest] = await Promise.all([
        api.communications(all, { limit: 1, sort: '-ts' }),
        api.communications(all, { limit: 1, sort: 'ts' }),
      ]);
      const n = newest.items?.[0];
      const o = oldest.items?.[0];
      if (!n || !o) {
        setNotice(auto ? '' : 'No communications in the lake match this filter.');
        return;
      }
      const hi = parseTs(n.ts_end || n.ts);
      let lo = parseTs(o.ts);
      if (hi - lo > 30 * DAY) {
        // Data spread over months: show the newest hour of it, tightened to where it starts.
        const recent = await api.communications({ window: { from: hi - HOUR, to: hi + 1 }, q: st.q }, { limit: 1, sort: 'ts' });
        lo = recent.items?.[0] ? parseTs(recent.items[0].ts) : hi - HOUR;
      }
      const w = windowAround(lo, hi);
      if (auto && hashNow.current !== startedAt) return;
      if (auto) {
        keepNotice.current = true;
        setNotice('Nothing in the last hour: showing the time range that holds data.');
      }
      go({ rel: '', from: w.from, to: w.to }, auto);
    } catch (e) {
      setNotice(`Could not search for data: ${(e as Error).message}`);
    } finally {
      setFinding(false);
    }
  };
  const autoJumped = useRef(false);
  useEffect(() => {
    if (autoJumped.current || !st.defaulted || !timeline.data || timeline.loading) return;
    autoJumped.current = true;
    const total = timeline.data.buckets.reduce((a, b) => a + b.count, 0);
    if (total === 0 && !st.q) findData(true);
  }, [timeline.data, timeline.loading]);

  // Keyboard: Escape closes the detail.
  useEffect(() => {
    const k = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && st.sel && !(e.target as HTMLElement).closest?.('.filterbar')) go({ sel: '', tab: 'map' });
    };
    window.addEventListener('keydown', k);
    return () => window.removeEventListener('keydown', k);
  }, [st.sel, go]);

  const [harErr, setHarErr] = useState<Error | undefined>();
  const exportHar = async () => {
    setHarErr(undefined);
    try {
      saveBlob(await api.har(selection), 'flowlake.har');
    } catch (e) {
      setHarErr(e as Error);
    }
  };

  const applyView = (v: SavedView) => {
    if (v.relative) go({ q: v.q, rel: v.relative, sel: '' });
    else go({ q: v.q, rel: '', from: parseTs(v.from), to: parseTs(v.to), sel: '' });
  };

  const qError = [timeline.error, listErr, map.error, seq.error].find((e) => e && (e as { status?: number }).status === 400);
  const tabs: [Tab, string][] = [
    ['map', 'Map'],
    ['sequence', 'Sequence'],
  ];
  if (st.sel) tabs.push(['detail', 'Detail']);
  const total = timeline.data?.buckets.reduce((a, b) => a + b.count, 0);
  const refreshing = timeline.loading || listLoading;

  return (
    <div class="explore">
      <div class="toolbar">
        <FilterBar
          q={st.q}
          onApply={(q) => go({ q, sel: '', tab: st.tab === 'detail' ? 'map' : st.tab })}
          fields={fieldList}
          values={valueHints(map.data)}
          error={qError}
          disabled={lockedQ}
        />
        {!readOnly && <ViewsMenu q={st.q} rel={st.rel} window={win} onApply={applyView} />}
        {!readOnly && (
          <button class="btn small" onClick={exportHar} title="download the selected exchanges as HAR">
            ⬇ HAR
          </button>
        )}
      </div>
      {harErr && <ErrorBox error={harErr} />}
      <TimeBar
        window={win}
        rel={st.rel}
        live={live}
        onLive={setLive}
        onRel={setRel}
        onWindow={setWindow}
        onFindData={() => findData(false)}
        finding={finding}
        refreshing={isLive && refreshing}
      />
      {notice && (
        <div class="notice">
          {notice}{' '}
          <button class="btn ghost small" onClick={() => setNotice('')}>
            ✕
          </button>
        </div>
      )}
      {fields.error && <ErrorBox error={fields.error} />}
      <div class="timeline-wrap">
        <Timeline window={win} data={timeline.data} onWindow={setWindow} total={total} />
        {timeline.error && !qError && <ErrorBox error={timeline.error} />}
      </div>
      <div class="panes">
        <section class="pane pane-list">
          <div class="pane-head">
            <span>
              Communications{' '}
              <span class="muted" data-testid="list-count" title="HTTP exchanges loaded (+: more as you scroll)">
                {listLoading && items.length === 0 ? '' : `${items.length}${next ? '+' : ''}`}
              </span>
            </span>
            {listLoading && <span class="spinner small" />}
          </div>
          {listErr && !qError && <ErrorBox error={listErr} />}
          {qError && items.length === 0 ? (
            <Empty>The filter has an error (see above).</Empty>
          ) : listErr && items.length === 0 ? null : listLoading && items.length === 0 ? (
            <Spinner />
          ) : items.length === 0 ? (
            <Empty>
              No communications in this window{st.q ? ' match the filter' : ''}.{' '}
              <button class="btn small" onClick={() => findData(false)}>
                Find data
              </button>
            </Empty>
          ) : (
            <CommList
              items={items}
              hasMore={!!next}
              loadingMore={loadingMore}
              onMore={more}
              sort={st.sort}
              onSort={(sort: Sort) => go({ sort })}
              sel={st.sel}
              onSelect={(id, at) => go({ sel: id, at, tab: 'detail' }, st.tab === 'detail')}
              showDate={win.to - win.from > DAY || new Date(win.from / 1000).getUTCDate() !== new Date(win.to / 1000).getUTCDate()}
            />
          )}
        </section>
        <section class="pane pane-side">
          <div class="tabs" role="tablist">
            {tabs.map(([t, label]) => (
              <button role="tab" aria-selected={st.tab === t} class={st.tab === t ? 'active' : ''} data-testid={`tab-${t}`} onClick={() => go({ tab: t })}>
                {label}
              </button>
            ))}
          </div>
          <div class="tab-body">
            {st.tab === 'map' &&
              (map.error && !map.data ? (
                qError ? <Empty>Fix the filter to see the map.</Empty> : <ErrorBox error={map.error} />
              ) : !map.data || (!positions.data && !positions.error) ? (
                <Spinner />
              ) : map.data.nodes.length === 0 ? (
                <Empty>Nothing to draw: no communications in this window.</Empty>
              ) : (
                <NetworkMap
                  data={map.data}
                  positions={localPos ?? positions.data ?? {}}
                  scope={scope}
                  onScope={readOnly ? undefined : setScope}
                  onPositions={readOnly || !canWrite(user) ? undefined : onPositions}
                  onFilter={addFilter}
                  saving={saveMsg}
                />
              ))}
            {st.tab === 'sequence' &&
              (seq.error && !seq.data ? (
                qError ? <Empty>Fix the filter to see the sequence.</Empty> : <ErrorBox error={seq.error} />
              ) : !seq.data ? (
                <Spinner />
              ) : seq.data.calls.length === 0 ? (
                <Empty>No calls in this window.</Empty>
              ) : (
                <>
                  <div class="muted small pad">
                    {seq.data.calls.length} calls between {seq.data.participants.length} participants
                    {seq.data.calls.length >= 200 ? ' (first 200: narrow the window or the filter)' : ''} · click a call for its detail
                  </div>
                  <SequenceDiagram data={seq.data} sel={st.sel} onSelect={(id, at) => go({ sel: id, at, tab: 'detail' })} />
                </>
              ))}
            {st.tab === 'detail' && st.sel && (
              <Detail id={st.sel} ts={st.at} fields={fieldList} onClose={() => go({ sel: '', tab: 'map' })} onFilter={addFilter} />
            )}
          </div>
        </section>
      </div>
    </div>
  );
}
