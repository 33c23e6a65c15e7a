// Runtime configuration, read from config.json next to index.html so that the
// same build deploys anywhere (S3/CloudFront with an API elsewhere, or embedded in
// `flowlake serve` with the API on the same origin).

export interface Config {
  /** Base URL of the API, e.g. "https://api.example.com"; "" = same origin. */
  api_base: string;
}

export const defaultConfig: Config = { api_base: '' };

export function parseConfig(raw: unknown): Config {
  if (!raw || typeof raw !== 'object') return { ...defaultConfig };
  const r = raw as Record<string, unknown>;
  const base = typeof r.api_base === 'string' ? r.api_base.trim().replace(/\/+$/, '') : '';
  if (base && !/^https?:\/\//.test(base) && !base.startsWith('/')) {
    throw new Error(`config.json: api_base must be an http(s) URL or a path, got ${JSON.stringify(base)}`);
  }
  return { api_base: base };
}

export async function loadConfig(f: typeof fetch = fetch): Promise<Config> {
  let res: Response;
  try {
    res = await f('./config.json', { cache: 'no-store' });
  } catch {
    return { ...defaultConfig };
  }
  if (!res.ok) return { ...defaultConfig };
  return parseConfig(await res.json());
}
