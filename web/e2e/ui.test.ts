// End-to-end tests of the UI in Chromium against a real `flowlake serve` over a
// lake parsed from public test captures. Every expected value is computed from
// the captures with tshark (see harness.ts), none is typed in.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildFlowlake, CHROMIUM, ensureResults, REDACTED, RESULTS, rfc3339, skipReason, segmentInto, startServe, tempDir,
  TESTDATA, truthRequests, truthResponses, type Server, type TruthRequest, type TruthResponse,
} from './harness';

const WIKI = join(TESTDATA, 'zeek-wikipedia.pcap'); // 15 requests to several wikimedia hosts, with DNS
const BRO = join(TESTDATA, 'zeek-http-bro.org.pcap'); // 31 requests, 13 connections
const K1000 = join(TESTDATA, 'zeek-http-1000-requests-one-dropped-response.pcap'); // 1000 requests in 0.6 s, the newest capture

const reason = skipReason();
if (reason) console.warn(`\n  web e2e tests SKIPPED: ${reason}\n`);

interface Shot {
  file: string;
  what: string;
}
const shots: Shot[] = [];

describe.skipIf(!!reason)('flowlake UI in Chromium', () => {
  let tmp: ReturnType<typeof tempDir>;
  let srv: Server;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let wiki: TruthRequest[];
  let wikiResp: TruthResponse[];
  let bro: TruthRequest[];
  let k1000: TruthRequest[];
  const consoleErrors: string[] = [];
  let expectErrors = false;

  const shot = async (name: string, what: string, p: Page = page) => {
    const file = join(RESULTS, `${name}.png`);
    await p.screenshot({ path: file });
    shots.push({ file, what });
  };
  const windowHash = (reqs: TruthRequest[], extra = '') => {
    const lo = Math.min(...reqs.map((r) => r.ts_us)) - 1_000_000;
    const hi = Math.max(...reqs.map((r) => r.ts_us)) + 2_000_000;
    return `#/explore?from=${encodeURIComponent(rfc3339(lo))}&to=${encodeURIComponent(rfc3339(hi))}${extra}`;
  };
  const go = async (hash: string) => {
    await page.evaluate((h) => (location.hash = h), hash);
  };
  /** Waits until the list has loaded n communications (and nothing is loading). */
  const expectCount = async (n: number, p: Page = page) => {
    try {
      await p.waitForFunction(
        (want) =>
          document.querySelector('[data-testid=list-count]')?.textContent?.trim() === `${want}` &&
          !document.querySelector('.pane-list .spinner') &&
          (want > 20 ? document.querySelectorAll('[data-testid=list] .row').length >= 20 : document.querySelectorAll('[data-testid=list] .row').length === want),
        n,
        { timeout: 20_000 },
      );
    } catch {
      const got = await p.textContent('[data-testid=list-count]').catch(() => null);
      throw new Error(`list count: want ${n}, got ${JSON.stringify(got)}`);
    }
  };

  /** Waits until the map shows exactly the nodes of ids. */
  const mapShows = async (ids: string[], p: Page = page) => {
    try {
      await p.waitForFunction(
        (want) => {
          const cy = (document.querySelector('[data-testid=map]') as any)?.__cy;
          return !!cy && cy.nodes().length === want.length && want.every((id: string) => cy.getElementById(id).nonempty());
        },
        ids,
        { timeout: 20_000 },
      );
    } catch {
      const got = await p.evaluate(() => (document.querySelector('[data-testid=map]') as any)?.__cy?.nodes().map((n: any) => n.id()));
      throw new Error(`map nodes: want ${JSON.stringify(ids)}, got ${JSON.stringify(got)}`);
    }
  };
  /**
   * What is wrong with the map as drawn (in screen pixels): nodes or labels that
   * overlap, nodes or labels outside the canvas, edges hidden under their nodes.
   */
  const mapProblems = (p: Page = page) =>
    p.evaluate(() => {
      const cy = (document.querySelector('[data-testid=map]') as any)?.__cy;
      if (!cy) return ['no map'];
      const out: string[] = [];
      const w = cy.width();
      const h = cy.height();
      type B = { x1: number; y1: number; x2: number; y2: number; w: number; h: number };
      const ns = cy.nodes().map((n: any) => ({
        id: n.id() as string,
        label: n.data('label') as string,
        c: n.renderedPosition() as { x: number; y: number },
        body: n.renderedBoundingBox({ includeLabels: false, includeOverlays: false }) as B,
        all: n.renderedBoundingBox({ includeLabels: true, includeOverlays: false }) as B,
      }));
      const meet = (a: B, b: B) => a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2;
      const r = (b: B) => `[${Math.round(b.x1)},${Math.round(b.y1)} ${Math.round(b.w)}×${Math.round(b.h)}]`;
      for (let i = 0; i < ns.length; i++) {
        const a = ns[i];
        if (a.all.w < a.body.w || a.all.h <= a.body.h) out.push(`${a.label}: no label drawn ${r(a.all)}`);
        if (a.all.x1 < 0 || a.all.y1 < 0 || a.all.x2 > w || a.all.y2 > h) out.push(`${a.label} ${r(a.all)} outside the ${w}×${h} map`);
        for (let j = i + 1; j < ns.length; j++) {
          const b = ns[j];
          if (meet(a.all, b.all)) out.push(`${a.label} ${r(a.all)} and ${b.label} ${r(b.all)} overlap`);
        }
      }
      const byId = new Map(ns.map((n: any) => [n.id, n]));
      cy.edges().forEach((e: any) => {
        const a: any = byId.get(e.data('source'));
        const b: any = byId.get(e.data('target'));
        if (!a || !b || a === b) return;
        const room = Math.hypot(a.c.x - b.c.x, a.c.y - b.c.y) - a.body.w / 2 - b.body.w / 2;
        if (room < 10) out.push(`edge ${a.label} → ${b.label}: ${Math.round(room)} px visible`);
      });
      return out;
    });

  beforeAll(async () => {
    ensureResults();
    tmp = tempDir();
    wiki = truthRequests(WIKI);
    wikiResp = truthResponses(WIKI);
    bro = truthRequests(BRO);
    k1000 = truthRequests(K1000);
    expect(wiki.length).toBeGreaterThan(5);
    expect(bro.length).toBeGreaterThan(5);
    const bin = buildFlowlake(tmp.dir);
    const data = join(tmp.dir, 'data');
    segmentInto(bin, data, 'wikipedia', WIKI);
    segmentInto(bin, data, 'bro-org', BRO);
    segmentInto(bin, data, 'thousand', K1000);
    srv = await startServe(bin, data);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page = await ctx.newPage();
    page.on('console', (m) => {
      if (m.type() === 'warning') consoleErrors.push(`warning: ${m.text()}`);
      if (m.type() === 'error' && !(expectErrors && /status of 400/.test(m.text()))) consoleErrors.push(`${m.text()} (${m.location()?.url ?? ''})`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  });

  afterAll(async () => {
    await browser?.close();
    await srv?.stop();
    tmp?.remove();
    if (shots.length) {
      console.log(`\nscreenshots in ${RESULTS}:\n${shots.map((s) => `  ${s.file.split('/').pop()}: ${s.what}`).join('\n')}\n`);
    }
  });

  it('logs in', async () => {
    await page.goto(srv.base + '/');
    await page.waitForSelector('form[aria-label=login]');
    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', srv.password);
    await shot('01-login', 'the login page, filled in');
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-testid=user]');
    expect(await page.textContent('[data-testid=user]')).toContain('admin');
  });

  it('jumps to the newest data when the last hour is empty', async () => {
    // The captures are years old: the UI finds the newest data (the 1000-request capture) by itself.
    await page.waitForFunction(() => document.querySelector('[data-testid=list-count]')?.textContent?.trim() === '200+', null, { timeout: 20_000 });
    expect(await page.textContent('.notice')).toContain('showing the time range that holds data');
    const p = new URLSearchParams(new URL(page.url()).hash.split('?')[1]);
    const last = Math.max(...k1000.map((r) => r.ts_us)) / 1000;
    expect(Date.parse(p.get('from')!)).toBeLessThan(last);
    expect(Date.parse(p.get('to')!)).toBeGreaterThan(last);
    // A one-node map (localhost calling itself): the node and its label in view.
    const hosts = [...new Set(k1000.flatMap((r) => [r.client, r.server]))];
    expect(hosts).toHaveLength(1);
    await mapShows(hosts);
    expect(await mapProblems()).toEqual([]);
    await shot('02-explore-auto-window', 'explore right after login: the UI moved by itself to the newest data (the 1000-request capture), first page of 200');
  });

  it('pages a long list with virtual scrolling and sorts it', async () => {
    const n = k1000.length;
    let maxRows = 0;
    for (let i = 0; i < 40; i++) {
      const count = await page.textContent('[data-testid=list-count]');
      maxRows = Math.max(maxRows, await page.$$eval('[data-testid=list] .row', (r) => r.length));
      if (count?.trim() === `${n}`) break;
      await page.$eval('[data-testid=list]', (el) => (el.scrollTop = el.scrollHeight));
      await page.waitForTimeout(250);
    }
    expect((await page.textContent('[data-testid=list-count]'))?.trim()).toBe(`${n}`);
    // Only the rows in view (plus a few) are in the DOM, whatever the list length.
    expect(maxRows).toBeGreaterThan(10);
    expect(maxRows).toBeLessThan(60);
    await shot('03-list-scrolled', `the list scrolled to the end: all ${n} exchanges fetched page by page, ${maxRows} rows at most in the DOM`);
    // Keyboard: End selects the last row (the oldest with the default newest-first order).
    await page.focus('[data-testid=list]');
    await page.keyboard.press('End');
    await page.waitForSelector('[data-testid=list] .row.selected');
    await page.waitForSelector('[data-testid=detail] [data-testid=req-headers]');
    // Sort by duration, longest first.
    await page.click('.list-head [role=columnheader]:has-text("Duration")');
    await page.waitForFunction(() => location.hash.includes('sort=-duration_us'));
    // The rows (re)loaded in that order: durations never increase down the list.
    const sorted = () =>
      page.waitForFunction(
        () => {
          const us = [...document.querySelectorAll('[data-testid=list] .row .c-dur')].map((e) => {
            const m = /^([\d.]+)(µs|ms|s)$/.exec(e.textContent ?? '');
            return m ? parseFloat(m[1]) * ({ µs: 1, ms: 1e3, s: 1e6 } as Record<string, number>)[m[2]] : NaN;
          });
          return us.length > 10 && us.every((v, i) => !Number.isNaN(v) && (i === 0 || v <= us[i - 1]));
        },
        null,
        { timeout: 20_000 },
      );
    await sorted();
  });

  it('draws the map: the expected nodes and edges', async () => {
    await go(windowHash(wiki));
    await expectCount(wiki.length);
    // Expected HTTP edges (client → server) with their request counts, from tshark.
    const want = new Map<string, number>();
    const hostsOf = new Map<string, Set<string>>();
    for (const r of wiki) {
      const k = `${r.client}->${r.server}`;
      want.set(k, (want.get(k) ?? 0) + 1);
      hostsOf.set(r.server, (hostsOf.get(r.server) ?? new Set()).add(r.host));
    }
    interface G {
      nodes: { id: string; label: string }[];
      edges: { source: string; target: string; protocol: string; count: number }[];
    }
    const graph = async (): Promise<G | null> =>
      page.evaluate(() => {
        const cy = (document.querySelector('[data-testid=map]') as unknown as { __cy?: any })?.__cy;
        if (!cy) return null;
        return {
          nodes: cy.nodes().map((n: any) => ({ id: n.id(), label: n.data('label') })),
          edges: cy.edges().map((e: any) => ({ source: e.data('source'), target: e.data('target'), protocol: e.data('protocol'), count: e.data('count') })),
        };
      });
    await page.waitForFunction(
      (n) => ((document.querySelector('[data-testid=map]') as any)?.__cy?.edges('[protocol = "http"]').length ?? 0) >= n,
      want.size,
      { timeout: 20_000 },
    );
    const g = (await graph())!;
    const got = new Map<string, number>();
    for (const e of g.edges.filter((e) => e.protocol === 'http')) got.set(`${e.source}->${e.target}`, e.count);
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
    // Other edges may only be the other protocols of the contract.
    for (const e of g.edges) expect(['http', 'tls', 'tcp', 'dns']).toContain(e.protocol);
    // Servers are named by a host name they were reached as.
    const labels = new Map(g.nodes.map((n) => [n.id, n.label]));
    for (const [ip, hosts] of hostsOf) {
      expect(labels.has(ip), `node ${ip}`).toBe(true);
      expect([...hosts], `name of ${ip}`).toContain(labels.get(ip));
    }
    expect(labels.has(wiki[0].client)).toBe(true);
    expect(await mapProblems()).toEqual([]);
    await page.waitForTimeout(300);
    await shot('04-map', 'network map of the wikipedia capture: client, wikimedia servers named by Host, DNS, edges weighted by volume');
  });

  it('saves dragged node positions for the user', async () => {
    const node = async () =>
      page.evaluate(() => {
        const cy = (document.querySelector('[data-testid=map]') as any).__cy;
        const n = cy.nodes().sort((a: any, b: any) => b.degree() - a.degree())[0];
        return { id: n.id() as string, r: n.renderedPosition() as { x: number; y: number }, m: n.position() as { x: number; y: number } };
      });
    const before = await node();
    const box = (await (await page.$('[data-testid=map]'))!.boundingBox())!;
    await page.mouse.move(box.x + before.r.x, box.y + before.r.y);
    await page.mouse.down();
    await page.mouse.move(box.x + before.r.x + 40, box.y + before.r.y + 30, { steps: 6 });
    await page.mouse.move(box.x + before.r.x + 80, box.y + before.r.y + 60, { steps: 6 });
    await page.mouse.up();
    await page.waitForSelector('.map-tools :text("positions saved")');
    const moved = await page.evaluate((id) => (document.querySelector('[data-testid=map]') as any).__cy.getElementById(id).position(), before.id);
    expect(Math.hypot(moved.x - before.m.x, moved.y - before.m.y)).toBeGreaterThan(20);
    // Wherever it was dropped, it covers no other node.
    expect((await mapProblems()).filter((p) => / overlap$/.test(p))).toEqual([]);
    // After a reload the node is where it was left.
    await page.reload();
    await expectCount(wiki.length);
    await page.waitForFunction(
      ([id, x, y]) => {
        const n = (document.querySelector('[data-testid=map]') as any)?.__cy?.getElementById(id);
        return n && n.nonempty() && Math.abs(n.position().x - (x as number)) <= 1 && Math.abs(n.position().y - (y as number)) <= 1;
      },
      [before.id, moved.x, moved.y] as [string, number, number],
      { timeout: 20_000 },
    );
    // A node dropped right onto another is moved off it, and saved where it ends up.
    const twoNodes = () =>
      page.evaluate(() => {
        const cy = (document.querySelector('[data-testid=map]') as any).__cy;
        const ns = cy.nodes().sort((a: any, b: any) => a.degree() - b.degree() || (a.id() < b.id() ? -1 : 1));
        const at = (n: any) => ({ id: n.id() as string, r: n.renderedPosition() as { x: number; y: number } });
        return { a: at(ns[0]), b: at(ns[1]) };
      });
    // (The view settles first: the page around the map may still be changing size.)
    let pair = await twoNodes();
    for (let i = 0; i < 20; i++) {
      await page.waitForTimeout(150);
      const again = await twoNodes();
      if (JSON.stringify(again) === JSON.stringify(pair)) break;
      pair = again;
    }
    const mbox = (await (await page.$('[data-testid=map]'))!.boundingBox())!;
    await page.mouse.move(mbox.x + pair.a.r.x, mbox.y + pair.a.r.y);
    await page.mouse.down();
    await page.mouse.move(mbox.x + (pair.a.r.x + pair.b.r.x) / 2, mbox.y + (pair.a.r.y + pair.b.r.y) / 2, { steps: 6 });
    await page.mouse.move(mbox.x + pair.b.r.x, mbox.y + pair.b.r.y, { steps: 6 });
    expect(await page.evaluate(() => (document.querySelector('[data-testid=map]') as any).__cy.$('node:grabbed').map((n: any) => n.id()))).toEqual([pair.a.id]);
    await page.mouse.up();
    await page.waitForSelector('.map-tools :text("positions saved")');
    // (Where the user drops a node is up to them, even half out of view: only overlaps count here.)
    expect((await mapProblems()).filter((p) => !/ outside /.test(p))).toEqual([]);
    // (At the map's zoom: apart by at least the other node's rendered radius, however small the zoom.)
    const dropped = await page.evaluate(
      ([a, b]) => {
        const cy = (document.querySelector('[data-testid=map]') as any).__cy;
        return { r: cy.getElementById(a).renderedPosition() as { x: number; y: number }, w: cy.getElementById(b).renderedWidth() as number };
      },
      [pair.a.id, pair.b.id],
    );
    expect(Math.hypot(dropped.r.x - pair.b.r.x, dropped.r.y - pair.b.r.y)).toBeGreaterThan(dropped.w / 2);
    // Filter by a click on the map: a click on a node (one in view that no other node covers) adds its clause.
    const r = await page.evaluate(() => {
      const cy = (document.querySelector('[data-testid=map]') as any).__cy;
      const ns = cy.nodes().map((n: any) => ({ id: n.id() as string, r: n.renderedPosition() as { x: number; y: number } }));
      const inView = (p: { x: number; y: number }) => p.x > 10 && p.y > 10 && p.x < cy.width() - 10 && p.y < cy.height() - 10;
      return ns.find((a: any) => inView(a.r) && ns.every((b: any) => a === b || Math.hypot(a.r.x - b.r.x, a.r.y - b.r.y) > 40));
    });
    expect(r, 'a node apart from the others').toBeDefined();
    await page.mouse.click(mbox.x + r.r.x, mbox.y + r.r.y);
    await page.waitForFunction((ip) => (document.querySelector('[data-testid=filter]') as HTMLInputElement).value.includes(`"${ip}"`), r.id);
    await expectCount(wiki.filter((x) => x.client === r.id || x.server === r.id).length);
    await page.fill('[data-testid=filter]', '');
    await page.keyboard.press('Enter');
    await expectCount(wiki.length);
  });

  it('completes field names and narrows the list with a filter', async () => {
    const host = 'upload.wikimedia.org';
    const n = wiki.filter((r) => r.host === host).length;
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(wiki.length);
    await page.click('[data-testid=filter]');
    await page.keyboard.type('ho');
    await page.waitForSelector('[data-testid=completions] li');
    const options = await page.$$eval('[data-testid=completions] li .c-label', (els) => els.map((e) => e.textContent));
    expect(options).toContain('host');
    await shot('05-filter-completion', 'completion of field names (from /api/v1/fields) in the filter bar');
    await page.keyboard.press('Tab');
    expect(await page.inputValue('[data-testid=filter]')).toBe('host ');
    await page.keyboard.type(`= "${host}"`);
    await page.keyboard.press('Enter');
    await expectCount(n);
    const servers = await page.$$eval('[data-testid=list] .row .c-server', (els) => els.map((e) => e.textContent?.trim()));
    expect(servers).toHaveLength(n);
    for (const s of servers) expect(s).toBe(host);
    await shot('06-list-filtered', `the list narrowed to host = "${host}" (${n} of ${wiki.length} requests)`);
  });

  it('shows filter errors in place', async () => {
    expectErrors = true;
    await page.fill('[data-testid=filter]', 'hots = 1');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-testid=filter-error]');
    const txt = await page.textContent('[data-testid=filter-error]');
    expect(txt).toMatch(/hots/);
    expect(await page.$('[data-testid=filter-error] mark')).not.toBeNull();
    await shot('07-filter-error', 'a filter error from the server shown in place, at its position');
    await page.fill('[data-testid=filter]', '');
    await page.keyboard.press('Enter');
    await expectCount(wiki.length);
    expectErrors = false;
  });

  it('shows the detail with the right headers', async () => {
    const r = wiki.find((x) => x.path.endsWith('main.css')) ?? wiki[1];
    const resp = wikiResp.find((x) => x.request_frame === r.frame)!;
    expect(resp).toBeDefined();
    await page.click(`[data-testid=list] .row:has(.c-path:text-is("${r.path}"))`);
    await page.waitForSelector('[data-testid=detail] [data-testid=req-headers]');
    const rows = async (sel: string) =>
      page.$$eval(`[data-testid=detail] [data-testid=${sel}] tr`, (trs) =>
        trs.map((tr) => [tr.querySelector('th')!.textContent!, tr.querySelector('td')!.textContent!] as [string, string]),
      );
    const req = await rows('req-headers');
    const respRows = await rows('resp-headers');
    const check = (got: [string, string][], want: [string, string][]) => {
      expect(got.map(([k]) => k.toLowerCase())).toEqual(want.map(([k]) => k.toLowerCase()));
      want.forEach(([k, v], i) => {
        if (!REDACTED.has(k.toLowerCase())) expect(got[i][1], k).toBe(v);
      });
    };
    check(req, r.headers);
    check(respRows, resp.headers);
    const title = await page.textContent('[data-testid=detail] .detail-title');
    expect(title).toContain(r.method);
    expect(title).toContain(r.uri);
    expect(title).toContain(String(resp.status));
    await shot('08-detail', `detail of ${r.method} ${r.uri}: request/response headers as in the capture, timings, TCP facts`);
    // Keyboard: ↓ selects the next row and the detail follows.
    await page.keyboard.press('ArrowDown');
    await page.waitForFunction((p) => !document.querySelector('[data-testid=detail] .detail-title')?.textContent?.includes(p), r.uri);
  });

  it('downloads the pcap of the session', async () => {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=detail] button:has-text("pcap")')]);
    const file = join(RESULTS, 'session.pcap');
    await dl.saveAs(file);
    // tshark reads it and finds HTTP in it.
    const out = execFileSync('tshark', ['-n', '-r', file, '-Y', 'http.request', '-T', 'fields', '-e', 'http.host'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(out.trim().length).toBeGreaterThan(0);
  });

  it('downloads the HAR of the exchange', async () => {
    const title = (await page.textContent('[data-testid=detail] .detail-title'))!;
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=detail] button:has-text("HAR")')]);
    const file = join(RESULTS, 'exchange.har');
    await dl.saveAs(file);
    const har = JSON.parse(readFileSync(file, 'utf8'));
    expect(har.log.entries).toHaveLength(1);
    const e = har.log.entries[0];
    expect(title).toContain(e.request.method);
    expect(title).toContain(new URL(e.request.url).pathname);
  });

  it('lists the calls in order in the sequence diagram', async () => {
    await go(windowHash(wiki, '&tab=sequence'));
    await page.waitForSelector('[data-testid=seq-call]');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=seq-call]').length === n, wiki.length, { timeout: 20_000 });
    const labels = await page.$$eval('[data-testid=seq-call]', (gs) => gs.map((g) => g.getAttribute('data-label')));
    const want = [...wiki].sort((a, b) => a.ts_us - b.ts_us || a.frame - b.frame).map((r) => `${r.method} ${r.path}`);
    expect(labels.map((l) => (l ?? '').split('?')[0])).toEqual(want);
    // Participants are named: each server by a host name it was reached as.
    const parts = await page.$$eval('.seq-participant', (gs) => gs.map((g) => [g.getAttribute('data-id'), g.querySelector('text')!.lastChild!.textContent]));
    const names = new Map(parts as [string, string][]);
    for (const r of wiki) {
      const hosts = wiki.filter((x) => x.server === r.server).map((x) => x.host);
      expect(hosts, `participant ${r.server}`).toContain(names.get(r.server));
    }
    await shot('09-sequence', 'sequence diagram of the wikipedia capture: participants by name, calls in time order');
    // Click a call → its detail.
    const second = page.locator('[data-testid=seq-call]').nth(1);
    const label = (await second.getAttribute('data-label'))!;
    await second.locator('text.label').click();
    await page.waitForSelector('[data-testid=detail] [data-testid=req-headers]');
    expect(await page.textContent('[data-testid=detail] .detail-title')).toContain(label.split(' ')[1].split('?')[0]);
  });

  it('brushes the timeline to a narrower window', async () => {
    await go(windowHash(bro));
    await expectCount(bro.length);
    // The bro.org map (a new map: the sequence tab was open): client and server side by side.
    const broNodes = [...new Set(bro.flatMap((r) => [r.client, r.server]))];
    expect(broNodes).toHaveLength(2);
    await mapShows(broNodes);
    expect(await mapProblems()).toEqual([]);
    const before = new URL(page.url()).hash;
    const over = await page.$('[data-testid=timeline] .u-over');
    const box = (await over!.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.05, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2, { steps: 8 });
    await page.mouse.move(box.x + box.width * 0.55, box.y + box.height / 2, { steps: 8 });
    await page.mouse.up();
    await page.waitForFunction((h) => location.hash !== h, before);
    const p = new URLSearchParams(new URL(page.url()).hash.split('?')[1]);
    const span = (h: URLSearchParams) => Date.parse(h.get('to')!) - Date.parse(h.get('from')!);
    const p0 = new URLSearchParams(before.split('?')[1]);
    expect(span(p)).toBeLessThan(span(p0) * 0.6);
    const from = Date.parse(p.get('from')!) * 1000 + Number(p.get('from')!.match(/\.\d{3}(\d{3})/)?.[1] ?? 0);
    const to = Date.parse(p.get('to')!) * 1000 + Number(p.get('to')!.match(/\.\d{3}(\d{3})/)?.[1] ?? 0);
    const inside = bro.filter((r) => r.ts_us >= from && r.ts_us < to).length;
    expect(inside).toBeGreaterThan(0);
    await expectCount(inside);
    await shot('10-timeline-brushed', 'after brushing the timeline: the window narrowed to the selection, list and map follow');
  });

  it('saves a search and opens it as a public link without an account', async () => {
    await go(windowHash(wiki, `&q=${encodeURIComponent('host = "upload.wikimedia.org"')}`));
    const n = wiki.filter((r) => r.host === 'upload.wikimedia.org').length;
    await expectCount(n);
    await page.click('[data-testid=save-view]');
    await page.fill('.modal input', 'e2e uploads');
    await page.click('.modal button[type=submit]');
    await page.waitForSelector('.modal', { state: 'detached' });
    await page.click('[data-testid=views]');
    await page.waitForSelector('.menu-item:has-text("e2e uploads")');
    await shot('11-saved-searches', 'the saved searches menu with the new search');
    await page.click('.menu-item:has-text("e2e uploads") button:has-text("Share")');
    await page.click('.modal button[type=submit]');
    const url = await (await page.waitForSelector('[data-testid=public-url]')).inputValue();
    expect(url).toContain('#/public/');
    await page.keyboard.press('Escape');
    // A fresh browser context: no session.
    const anon = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const pp = await anon.newPage();
    const anonErrors: string[] = [];
    pp.on('console', (m) => m.type() === 'error' && anonErrors.push(m.text()));
    await pp.goto(url.replace(/^https?:\/\/[^/]+/, srv.base));
    await expectCount(n, pp);
    expect(await pp.textContent('.public-banner')).toContain('e2e uploads');
    // The map of the shared search (a first map in this browser: wait for it to be drawn).
    await mapShows([...new Set(wiki.filter((r) => r.host === 'upload.wikimedia.org').flatMap((r) => [r.client, r.server]))], pp);
    expect(await mapProblems(pp)).toEqual([]);
    await shot('12-public-link', 'a public link opened without an account: the shared search, read-only', pp);
    expect(anonErrors).toEqual([]);
    await anon.close();
  });

  it('shows the capture status page', async () => {
    await go('#/status');
    await page.waitForSelector('.status-page .state, .status-page table');
    await shot('13-status', 'capture status per agent (this lake has no agent reports: the empty state)');
  });

  it('shows the admin pages', async () => {
    await go('#/admin/users');
    await page.waitForSelector('[data-testid=users] td');
    expect(await page.textContent('[data-testid=users]')).toContain('admin');
    await page.fill('.inline-form input[placeholder=username]', 'e2e-analyst');
    await page.fill('.inline-form input[placeholder=password]', 'An4lyst-password!');
    await page.selectOption('.inline-form select', 'analyst');
    await page.click('.inline-form button[type=submit]');
    await page.waitForSelector('[data-testid=users] td:text-is("e2e-analyst")');
    await shot('14-admin-users', 'admin: users, with a user created by the test');
    for (const [sec, name] of [
      ['teams', '15-admin-teams'],
      ['agents', '16-admin-agents'],
      ['service-accounts', '17-admin-service-accounts'],
      ['links', '18-admin-links'],
    ]) {
      await go(`#/admin/${sec}`);
      await page.waitForSelector('.admin-body h3');
      await page.waitForFunction(() => !document.querySelector('.admin-body .state.loading'));
      await shot(name, `admin: ${sec}`);
    }
    expect(await page.textContent('[data-testid=links]')).toContain('e2e uploads');
  });

  it('shows new data live, without a reload', async () => {
    // A capture whose packets are moved to now: parsed into the lake while the page watches "Last 5m".
    const src = join(TESTDATA, 'zeek-http-get.pcap');
    const first = truthRequests(src);
    const firstUs = Math.min(...first.map((r) => r.ts_us));
    await go('#/explore?rel=5m');
    await page.waitForSelector('.state.empty');
    await page.evaluate(() => ((window as unknown as { __marker: number }).__marker = 42));
    const shifted = join(tmp.dir, 'live.pcap');
    const delta = (Date.now() * 1000 - firstUs) / 1e6 - 30; // 30 s ago
    execFileSync('editcap', ['-t', delta.toFixed(6), src, shifted], { stdio: 'ignore' });
    const live = truthRequests(shifted);
    expect(live.length).toBe(first.length);
    segmentInto(srv.bin, srv.dir, 'live', shifted);
    await expectCount(live.length);
    expect(await page.evaluate(() => (window as unknown as { __marker?: number }).__marker)).toBe(42);
    // The map follows too (its first draw loads the map library: wait for it before the screenshot).
    await mapShows([...new Set(live.flatMap((r) => [r.client, r.server]))]);
    expect(await mapProblems()).toEqual([]);
    await shot('19-live', 'live window (last 5 minutes): a capture parsed while the page was open appeared without a reload');
  });

  it('looks right at 1920×1080', async () => {
    // The map still shows the live capture, whose server (bro.org) is in the bro.org
    // capture too: that node stays where it is and the client is placed beside it.
    const broNodes = [...new Set(bro.flatMap((r) => [r.client, r.server]))];
    await page.setViewportSize({ width: 1920, height: 1080 });
    await go(windowHash(bro));
    await expectCount(bro.length);
    await mapShows(broNodes);
    expect(await mapProblems()).toEqual([]);
    await page.waitForTimeout(500);
    await shot('20-explore-1920', 'explore (bro.org capture) at 1920×1080: timeline with quality line, list, map');
    // Back to 1280×800: the map follows the resize and still draws both nodes apart.
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.waitForFunction(() => ((document.querySelector('[data-testid=map]') as any)?.__cy?.width() ?? 9999) < 900);
    expect(await mapProblems()).toEqual([]);
    await page.setViewportSize({ width: 1920, height: 1080 });
    await go(windowHash(wiki, '&tab=sequence'));
    await page.waitForSelector('[data-testid=seq-call]');
    await shot('21-sequence-1920', 'sequence diagram at 1920×1080');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('had no console errors or warnings', () => {
    expect(consoleErrors).toEqual([]);
  });
});
