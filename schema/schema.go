// Package schema is the single source of truth for the flowlake lake: table
// names, the Go row types that parquet-go writes (and whose struct tags name
// the columns), partition paths, the schema version, and the DDL that Athena
// and DuckDB use to read the same files.
//
// Timestamps are int64 microseconds since the Unix epoch, UTC, annotated as
// TIMESTAMP(MICROS). Columns listed in DESIGN.md are never renamed; new
// columns are only ever added.
package schema

import (
	"fmt"
	"time"
)

// Version is the lake schema version written into every Parquet file's
// key/value metadata under the key "flowlake.schema_version".
const Version = 1

// Table names: the first path element under lake/.
const (
	TableHTTP          = "http"
	TableTCP           = "tcp"
	TableDNS           = "dns"
	TableTLS           = "tls"
	TableParseStatus   = "parse_status"
	TableCaptureStatus = "capture_status"
)

// Tables lists every table, in the order the tools print them.
var Tables = []string{TableHTTP, TableTCP, TableDNS, TableTLS, TableParseStatus, TableCaptureStatus, TableEdges1m}

// TCP close reasons stored in TCP.Close.
const (
	CloseFIN     = "fin"
	CloseRST     = "rst"
	CloseTimeout = "timeout"
	CloseOpen    = "open"
)

// HTTP is one request/response exchange.
type HTTP struct {
	ID            string `parquet:"id"`
	TS            int64  `parquet:"ts,timestamp(microsecond)"`
	TSEnd         int64  `parquet:"ts_end,timestamp(microsecond)"`
	DurationUS    int64  `parquet:"duration_us"`
	Agent         string `parquet:"agent,dict"`
	ClientIP      string `parquet:"client_ip,dict"`
	ClientPort    int32  `parquet:"client_port"`
	ServerIP      string `parquet:"server_ip,dict"`
	ServerPort    int32  `parquet:"server_port"`
	ClientName    string `parquet:"client_name,dict"`
	ServerName    string `parquet:"server_name,dict"`
	TCPID         string `parquet:"tcp_id"`
	Seq           int32  `parquet:"seq"` // index of the exchange within its TCP connection
	Method        string `parquet:"method,dict"`
	URI           string `parquet:"uri"`
	Host          string `parquet:"host,dict"`
	Path          string `parquet:"path"`
	Query         string `parquet:"query"`
	Version       string `parquet:"version,dict"`
	Status        int32  `parquet:"status"`
	Reason        string `parquet:"reason,dict"`
	ReqHeaders    string `parquet:"req_headers"`
	RespHeaders   string `parquet:"resp_headers"`
	ReqBodyBytes  int64  `parquet:"req_body_bytes"`
	RespBodyBytes int64  `parquet:"resp_body_bytes"`
	ReqBody       string `parquet:"req_body"`
	RespBody      string `parquet:"resp_body"`
	ContentType   string `parquet:"content_type,dict"`
	UserAgent     string `parquet:"user_agent,dict"`
	TLS           bool   `parquet:"tls"`
	Complete      bool   `parquet:"complete"`
	Error         string `parquet:"error,dict"`
	CommunityID   string `parquet:"community_id,dict"`
}

// TCP is one TCP connection. AppProtocol is "http", "h2c" (cleartext
// HTTP/2 with prior knowledge, parsed into http rows with version
// "HTTP/2"), "dns" or "tls" as recognised from the first bytes; for
// decrypted TLS it is the protocol inside: "https" (HTTP/1.x, parsed into
// http rows with tls = true) or "h2" (HTTP/2, parsed into http rows with
// tls = true and version "HTTP/2").
type TCP struct {
	ID            string   `parquet:"id"`
	TS            int64    `parquet:"ts,timestamp(microsecond)"`
	TSEnd         int64    `parquet:"ts_end,timestamp(microsecond)"`
	DurationUS    int64    `parquet:"duration_us"`
	Agent         string   `parquet:"agent,dict"`
	ClientIP      string   `parquet:"client_ip,dict"`
	ClientPort    int32    `parquet:"client_port"`
	ServerIP      string   `parquet:"server_ip,dict"`
	ServerPort    int32    `parquet:"server_port"`
	ClientName    string   `parquet:"client_name,dict"`
	ServerName    string   `parquet:"server_name,dict"`
	PacketsC2S    int64    `parquet:"packets_c2s"`
	PacketsS2C    int64    `parquet:"packets_s2c"`
	BytesC2S      int64    `parquet:"bytes_c2s"` // TCP payload bytes
	BytesS2C      int64    `parquet:"bytes_s2c"`
	MissingBytes  int64    `parquet:"missing_bytes"`
	Retrans       int64    `parquet:"retransmissions"`
	OutOfOrder    int64    `parquet:"out_of_order"`
	RTTUS         int64    `parquet:"rtt_us"` // SYN to ACK of SYN-ACK; 0 when the handshake was not seen
	Close         string   `parquet:"close,dict"`
	SawSYN        bool     `parquet:"saw_syn"`
	AppProtocol   string   `parquet:"app_protocol,dict"` // see TCP
	HTTPExchanges int32    `parquet:"http_exchanges"`
	LimitHits     int32    `parquet:"limit_hits"` // times a reassembly memory bound dropped data
	CommunityID   string   `parquet:"community_id,dict"`
	Segments      []string `parquet:"segments,list"`
}

// DNS is one DNS query with its answer (if any).
type DNS struct {
	ID         string   `parquet:"id"`
	TS         int64    `parquet:"ts,timestamp(microsecond)"`
	Agent      string   `parquet:"agent,dict"`
	Transport  string   `parquet:"transport,dict"` // udp or tcp
	ClientIP   string   `parquet:"client_ip,dict"`
	ClientPort int32    `parquet:"client_port"`
	ServerIP   string   `parquet:"server_ip,dict"`
	ServerPort int32    `parquet:"server_port"`
	TxID       int32    `parquet:"txid"`
	Query      string   `parquet:"query,dict"`
	QType      string   `parquet:"qtype,dict"`
	RCode      string   `parquet:"rcode,dict"` // empty when no response was seen
	Answers    []string `parquet:"answers,list"`
	LatencyUS  int64    `parquet:"latency_us"`
	Responded  bool     `parquet:"responded"`
	Error      string   `parquet:"error,dict"`
}

// TLS is one TLS handshake. KeyStatus tells why the connection is (not)
// decrypted (internal/tlsdecrypt; Decrypted is KeyStatus == "decrypted"):
//
//   - "decrypted": records were decrypted and authenticated with the
//     logged secrets;
//   - "no-keys": no secrets are logged for its client random;
//   - "no-client-hello": the ClientHello was not captured, so there is no
//     client random to look the secrets up by;
//   - "keys-available": secrets are logged, but no encrypted record was
//     decrypted (the connection ended or lost data before one, or the
//     ServerHello was not captured);
//   - "decrypt-failed": the records did not authenticate with the logged
//     secrets (wrong or foreign keys);
//   - "unsupported": a version or cipher suite flowlake does not decrypt
//     (SSL 3.0, CCM, Camellia, NULL, …).
type TLS struct {
	TS         int64  `parquet:"ts,timestamp(microsecond)"`
	Agent      string `parquet:"agent,dict"`
	TCPID      string `parquet:"tcp_id"`
	ClientIP   string `parquet:"client_ip,dict"`
	ClientPort int32  `parquet:"client_port"`
	ServerIP   string `parquet:"server_ip,dict"`
	ServerPort int32  `parquet:"server_port"`
	Version    string `parquet:"version,dict"` // negotiated; the offered one when no ServerHello was seen
	SNI        string `parquet:"sni,dict"`
	ALPN       string `parquet:"alpn,dict"` // selected by the server, else the client's offer joined by ","
	Cipher     string `parquet:"cipher,dict"`
	Decrypted  bool   `parquet:"decrypted"`
	KeyStatus  string `parquet:"key_status,dict"` // why the flow is (not) decrypted; see TLS
	Error      string `parquet:"error,dict"`
}

// ParseStatus is one parsed input (a capture file run or a pipeline segment).
type ParseStatus struct {
	TS            int64  `parquet:"ts,timestamp(microsecond)"` // first packet time
	TSEnd         int64  `parquet:"ts_end,timestamp(microsecond)"`
	ParsedAt      int64  `parquet:"parsed_at,timestamp(microsecond)"`
	Agent         string `parquet:"agent,dict"`
	Stream        int32  `parquet:"stream"`
	Seq           int64  `parquet:"seq"`
	Input         string `parquet:"input"`
	Packets       int64  `parquet:"packets"`
	Bytes         int64  `parquet:"bytes"`
	Decoded       int64  `parquet:"decoded"`
	DecodeErrors  int64  `parquet:"decode_errors"`
	Truncated     int64  `parquet:"truncated"` // packets whose capture length was cut short
	TCPConns      int64  `parquet:"tcp_conns"`
	HTTPExchanges int64  `parquet:"http_exchanges"`
	HTTPErrors    int64  `parquet:"http_errors"`
	DNSQueries    int64  `parquet:"dns_queries"`
	TLSHandshakes int64  `parquet:"tls_handshakes"`
	MissingBytes  int64  `parquet:"missing_bytes"`
	LimitHits     int64  `parquet:"limit_hits"`
	Gap           bool   `parquet:"gap"`         // parsing started without its predecessor's state
	Status        string `parquet:"status,dict"` // ok, error, gap
	Error         string `parquet:"error"`
	DurationUS    int64  `parquet:"duration_us"`
}

// CaptureStatus is one agent status report for one stream.
type CaptureStatus struct {
	TS               int64  `parquet:"ts,timestamp(microsecond)"`
	Agent            string `parquet:"agent,dict"`
	Stream           int32  `parquet:"stream"`
	Interface        string `parquet:"interface,dict"`
	Captured         int64  `parquet:"captured"`
	Filtered         int64  `parquet:"filtered"`
	Dropped          int64  `parquet:"dropped"`
	Overflow         int64  `parquet:"overflow"`
	SegmentsUploaded int64  `parquet:"segments_uploaded"`
	BytesUploaded    int64  `parquet:"bytes_uploaded"`
	SpoolBytes       int64  `parquet:"spool_bytes"`
	Errors           int64  `parquet:"errors"`
}

// PartitionPath returns the Hive partition directory for a row whose first
// packet time is tsMicros, e.g. "dt=2024-01-01/hour=07".
func PartitionPath(tsMicros int64) string {
	t := time.UnixMicro(tsMicros).UTC()
	return fmt.Sprintf("dt=%04d-%02d-%02d/hour=%02d", t.Year(), t.Month(), t.Day(), t.Hour())
}

// Glob returns the DuckDB glob of a table below lakeRoot.
func Glob(lakeRoot, table string) string {
	return lakeRoot + "/" + table + "/*/*/*.parquet"
}

// DuckDBViews returns CREATE VIEW statements that expose every table of the
// lake at lakeRoot (a local path or an s3:// URL ending in /lake) to DuckDB.
func DuckDBViews(lakeRoot string) []string {
	out := make([]string, 0, len(Tables))
	for _, t := range Tables {
		out = append(out, fmt.Sprintf(
			"CREATE OR REPLACE VIEW %s AS SELECT * FROM read_parquet('%s', hive_partitioning=true, hive_types={'dt': DATE, 'hour': INTEGER}, union_by_name=true)",
			t, Glob(lakeRoot, t)))
	}
	return out
}
