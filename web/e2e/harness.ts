// End-to-end harness: builds flowlake (with the built UI embedded), parses real
// test captures into a lake, starts `flowlake serve` on a free port, computes the
// expected values from the same captures with tshark, and launches Debian's
// Chromium through playwright-core.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(WEB, '..');
export const RESULTS = join(WEB, 'test-results');
export const CHROMIUM = process.env.FLOWLAKE_CHROMIUM || '/usr/bin/chromium';
export const TESTDATA = process.env.FLOWLAKE_TESTDATA || resolve(REPO, '..', 'shared', 'testdata', 'pcaps');

/** Why the e2e tests cannot run here, or '' when they can. */
export function skipReason(): string {
  if (!existsSync(CHROMIUM)) return `chromium not found at ${CHROMIUM} (apt-get install chromium, or set FLOWLAKE_CHROMIUM)`;
  if (!existsSync(join(WEB, 'dist', 'index.html'))) return 'the UI is not built (run make web)';
  if (!existsSync(TESTDATA)) return `test captures not found at ${TESTDATA} (set FLOWLAKE_TESTDATA)`;
  for (const tool of ['go', 'tshark']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not found in PATH`;
    }
  }
  return '';
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

export interface Server {
  base: string;
  dir: string;
  bin: string;
  password: string;
  proc: ChildProcess;
  log: () => string;
  stop: () => Promise<void>;
}

/** Builds bin into dir (the UI in web/dist is embedded by go:embed). */
export function buildFlowlake(dir: string): string {
  const bin = join(dir, 'flowlake');
  execFileSync('go', ['build', '-o', bin, './cmd/flowlake'], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
  return bin;
}

/**
 * Feeds a capture through the real pipeline into the store in dataDir, as one
 * agent: cut into segments (kept under raw/, so the pcap export works), ingested
 * and parsed by the functions in process — what `make demo` does.
 */
export function segmentInto(bin: string, dataDir: string, agent: string, pcap: string): void {
  execFileSync(bin, ['segment', '-q', '--store', dataDir, '--agent', agent, '--max-bytes', '256KiB', pcap], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

export async function startServe(bin: string, dataDir: string): Promise<Server> {
  const port = await freePort();
  const password = `e2e-${Math.random().toString(36).slice(2)}-Pw1!`;
  const addr = `127.0.0.1:${port}`;
  let out = '';
  const proc = spawn(bin, ['serve', '--lake', dataDir, '--addr', addr], {
    cwd: REPO,
    env: { ...process.env, FLOWLAKE_ADMIN_PASSWORD: password },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (b) => (out += b));
  proc.stderr!.on('data', (b) => (out += b));
  const base = `http://${addr}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`flowlake serve exited ${proc.exitCode}:\n${out}`);
    try {
      const r = await fetch(`${base}/api/v1/health`);
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`flowlake serve did not answer on ${base}:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    base,
    dir: dataDir,
    bin,
    password,
    proc,
    log: () => out,
    stop: () =>
      new Promise<void>((res) => {
        if (proc.exitCode !== null) return res();
        proc.once('exit', () => res());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 5000);
      }),
  };
}

export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'flowlake-web-e2e-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Empties web/test-results (the artefacts of the previous run). */
export function ensureResults(): void {
  rmSync(RESULTS, { recursive: true, force: true });
  mkdirSync(RESULTS, { recursive: true });
}

// --- ground truth from tshark

export interface TruthRequest {
  ts_us: number; // frame time of the request (µs)
  client: string;
  server: string;
  port: number;
  method: string;
  host: string;
  uri: string;
  path: string;
  headers: [string, string][];
  frame: number;
}

export interface TruthResponse {
  request_frame: number;
  status: number;
  headers: [string, string][];
}

function splitHeaderLines(s: string): [string, string][] {
  if (!s) return [];
  return s
    .split('\\r\\n|')
    .map((l) => l.replace(/\\r\\n$/, ''))
    .filter(Boolean)
    .map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i).trim(), l.slice(i + 1).trim()] as [string, string];
    });
}

function tshark(file: string, filter: string, fields: string[]): string[][] {
  const out = execFileSync(
    'tshark',
    ['-n', '-r', file, '-Y', filter, '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=|', ...fields.flatMap((f) => ['-e', f])],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 },
  );
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => l.split('\t'));
}

/** Epoch seconds with 9 fraction digits → µs, without float rounding. */
export function epochToUs(s: string): number {
  const [sec, frac = ''] = s.split('.');
  return Number(sec) * 1_000_000 + Number((frac + '000000').slice(0, 6));
}

export function truthRequests(file: string): TruthRequest[] {
  return tshark(file, 'http.request', [
    'frame.number', 'frame.time_epoch', 'ip.src', 'ipv6.src', 'ip.dst', 'ipv6.dst', 'tcp.dstport',
    'http.request.method', 'http.host', 'http.request.uri', 'http.request.line',
  ]).map((f) => {
    const uri = f[9];
    return {
      frame: Number(f[0]),
      ts_us: epochToUs(f[1]),
      client: f[2] || f[3],
      server: f[4] || f[5],
      port: Number(f[6]),
      method: f[7],
      host: f[8],
      uri,
      path: uri.split('?')[0],
      headers: splitHeaderLines(f[10]),
    };
  });
}

export function truthResponses(file: string): TruthResponse[] {
  return tshark(file, 'http.response', ['http.request_in', 'http.response.code', 'http.response.line']).map((f) => ({
    request_frame: Number(f[0]),
    status: Number(f[1]),
    headers: splitHeaderLines(f[2]),
  }));
}

/** Headers whose values flowlake redacts before writing the lake. */
export const REDACTED = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']);

export function rfc3339(us: number): string {
  const ms = Math.floor(us / 1000);
  const d = new Date(ms).toISOString(); // …sss Z
  return `${d.slice(0, 23)}${String(us - ms * 1000).padStart(3, '0')}Z`;
}
