// The detail of one communication: request and response lines, headers and body
// previews, timings, TCP and TLS facts, downloads of the session's pcap and HAR.

import { useEffect, useState } from 'preact/hooks';
import { parseError, type Field } from '../api';
import { useApp } from '../context';
import { endpoint, formatBytes, prettyBody } from '../format';
import { edgeClause, exchangeSelection } from '../filter';
import { formatDuration, formatTsShort, parseTs } from '../time';
import { ErrorBox, saveBlob, Spinner, useAsync } from './common';
import { statusClass } from './CommList';

interface Props {
  id: string;
  /** The exchange's ts as the list or sequence returned it: the server's lookup hint ('' or absent: none). */
  ts?: string;
  fields: Field[];
  onClose: () => void;
  onFilter: (clause: string) => void;
}

function Headers({ rows, testid }: { rows: [string, string][] | null | undefined; testid: string }) {
  if (!rows || rows.length === 0) return <div class="muted small">no headers</div>;
  return (
    <table class="kv headers" data-testid={testid}>
      <tbody>
        {rows.map(([k, v]) => (
          <tr>
            <th>{k}</th>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Body({ body, bytes, contentType }: { body: string; bytes: number; contentType: string }) {
  if (!bytes && !body) return <div class="muted small">no body</div>;
  const shown = prettyBody(body, contentType);
  return (
    <div>
      <div class="muted small">
        {formatBytes(bytes)} {contentType && `· ${contentType}`}
        {body && bytes > body.length ? ` · preview of ${formatBytes(body.length)}` : ''}
        {!body && bytes ? ' · binary or not kept' : ''}
      </div>
      {shown && <pre class="body">{shown}</pre>}
    </div>
  );
}

function KV({ rows }: { rows: [string, unknown][] }) {
  return (
    <table class="kv">
      <tbody>
        {rows
          .filter(([, v]) => v !== undefined && v !== null && v !== '')
          .map(([k, v]) => (
            <tr>
              <th>{k}</th>
              <td>{Array.isArray(v) ? v.join('\n') : typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v)}</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}

export function Detail({ id, ts, fields, onClose, onFilter }: Props) {
  const { api, readOnly } = useApp();
  const st = useAsync((signal) => api.communication(id, ts, signal), [id]);
  const [dlError, setDlError] = useState<Error | undefined>();
  const [busy, setBusy] = useState('');
  useEffect(() => setDlError(undefined), [id]);
  const d = st.data && st.data.id === id ? st.data : undefined;

  const download = async (kind: 'pcap' | 'har') => {
    if (!d) return;
    setBusy(kind);
    setDlError(undefined);
    try {
      if (kind === 'pcap') saveBlob(await api.pcap(d.id, d.ts), `flowlake-${d.id}.pcap`);
      else saveBlob(await api.har(exchangeSelection(d, fields)), `flowlake-${d.id}.har`);
    } catch (e) {
      setDlError(e as Error);
    } finally {
      setBusy('');
    }
  };

  return (
    <aside class="detail" data-testid="detail" aria-label="communication detail">
      <div class="detail-head">
        {d ? (
          <span class="detail-title">
            <span class="method">{d.method}</span> <span class="path">{d.uri || d.path}</span>{' '}
            <span class={`status ${statusClass(d)}`}>
              {d.status || '–'} {d.reason}
            </span>
          </span>
        ) : (
          <span class="detail-title muted">{id}</span>
        )}
        <button class="btn ghost small" onClick={onClose} aria-label="close detail" title="close (Esc)">
          ✕
        </button>
      </div>
      {st.error && !d && <ErrorBox error={st.error} />}
      {!d && !st.error && <Spinner />}
      {d && (
        <div class="detail-body">
          {!readOnly && (
            <div class="actions">
              <button class="btn small" disabled={busy !== ''} onClick={() => download('pcap')}>
                {busy === 'pcap' ? 'Downloading…' : '⬇ pcap'}
              </button>
              <button class="btn small" disabled={busy !== ''} onClick={() => download('har')}>
                {busy === 'har' ? 'Downloading…' : '⬇ HAR'}
              </button>
              <button class="btn small" onClick={() => onFilter(edgeClause(d.client_ip, d.server_ip))}>
                Filter client → server
              </button>
            </div>
          )}
          {dlError && <ErrorBox error={dlError} />}
          {parseError(d) && (
            <div class="state error">
              <strong>Parse error</strong> <span class="msg">{parseError(d)}</span>
            </div>
          )}
          {d.status === 0 && !parseError(d) && <div class="state warn">No response was seen for this request.</div>}
          {!d.complete && <div class="state warn">Packets were missing: this exchange is incomplete.</div>}
          <section>
            <h4>Overview</h4>
            <KV
              rows={[
                ['client', `${d.client_name && d.client_name !== d.client_ip ? d.client_name + ' ' : ''}${endpoint(d.client_ip, d.client_port)}`],
                ['server', `${d.server_name && d.server_name !== d.server_ip ? d.server_name + ' ' : ''}${endpoint(d.server_ip, d.server_port)}`],
                ['host', d.host],
                ['started', formatTsShort(parseTs(d.ts))],
                ['ended', d.ts_end ? formatTsShort(parseTs(d.ts_end)) : ''],
                ['duration', formatDuration(d.duration_us)],
                ['version', d.version],
                ['agent', d.agent],
                ['user agent', d.user_agent],
                ['community id', d.community_id],
                ['id', d.id],
                ['exchange # on connection', d.seq],
              ]}
            />
          </section>
          <section>
            <h4>Request headers</h4>
            <div class="reqline">
              {d.method} {d.uri || d.path} {d.version}
            </div>
            <Headers rows={d.req_headers} testid="req-headers" />
          </section>
          <section>
            <h4>Request body</h4>
            <Body body={d.req_body} bytes={d.req_body_bytes} contentType={headerValue(d.req_headers, 'content-type')} />
          </section>
          <section>
            <h4>Response headers</h4>
            <div class="reqline">
              {d.version} {d.status || ''} {d.reason}
            </div>
            <Headers rows={d.resp_headers} testid="resp-headers" />
          </section>
          <section>
            <h4>Response body</h4>
            <Body body={d.resp_body} bytes={d.resp_body_bytes} contentType={d.content_type} />
          </section>
          <section>
            <h4>TCP</h4>
            {d.tcp ? (
              <KV
                rows={[
                  ['connection', d.tcp_id],
                  ['packets c→s / s→c', `${d.tcp.packets_c2s ?? '–'} / ${d.tcp.packets_s2c ?? '–'}`],
                  ['bytes c→s / s→c', `${formatBytes(d.tcp.bytes_c2s)} / ${formatBytes(d.tcp.bytes_s2c)}`],
                  ['RTT', d.tcp.rtt_us ? formatDuration(d.tcp.rtt_us) : ''],
                  ['retransmissions', d.tcp.retransmissions],
                  ['missing bytes', d.tcp.missing_bytes],
                  ['close', d.tcp.close],
                  ['segments', d.tcp.segments],
                ]}
              />
            ) : (
              <div class="muted small">no TCP record</div>
            )}
          </section>
          <section>
            <h4>TLS</h4>
            {d.tls_info ? (
              <KV
                rows={[
                  ['version', d.tls_info.version],
                  ['SNI', d.tls_info.sni],
                  ['ALPN', d.tls_info.alpn],
                  ['cipher', d.tls_info.cipher],
                  ['decrypted', d.tls_info.decrypted],
                  ['keys', d.tls_info.key_status],
                ]}
              />
            ) : (
              <div class="muted small">{d.tls ? 'TLS, no handshake record' : 'not TLS'}</div>
            )}
          </section>
        </div>
      )}
    </aside>
  );
}

function headerValue(rows: [string, string][] | null | undefined, name: string): string {
  const r = rows?.find(([k]) => k.toLowerCase() === name);
  return r ? r[1] : '';
}
