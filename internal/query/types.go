package query

import (
	"errors"
	"time"
)

// Errors returned by the Engine. Besides these, a malformed q yields a
// *filter.Error (errors.As) carrying the 0-based byte offset Pos of the
// problem in q: the HTTP layer answers 400 with "pos". Errors wrapping
// ErrBadRequest are other invalid requests (400 without pos), ErrNotFound
// is 404 (also for an id outside the caller's scope, which must not be
// told apart from a missing one), anything else is 500.
var (
	ErrNotFound   = errors.New("not found")
	ErrBadRequest = errors.New("bad request")
)

// Request selects exchanges: the time window [From, To), the filter q and
// the caller's scope. Zero From/To mean the last hour up to now.
type Request struct {
	From, To time.Time
	// Q is the filter expression (package filter); empty selects all.
	Q string
	// Scope lists the agents whose rows the caller may see (team
	// isolation). Nil means all agents; a non-nil empty slice means none.
	// It is enforced inside the scans: rows of other agents are never
	// returned nor counted.
	Scope []string
	// Limit caps Communications (1..1000, 0 = 100), Sequence (1..1000, 0 =
	// 200) and HAR (1..10000, 0 = 1000).
	Limit int
	// Cursor is the opaque Page.Next of the previous page ("" = first).
	Cursor string
	// Sort is one of ts, -ts, duration_us, -duration_us, status, -status;
	// "" means -ts (newest first).
	Sort string
	// Step is the timeline bucket width; 0 picks one for ~200 buckets.
	Step time.Duration
}

// Time is a timestamp that marshals as RFC 3339 with microseconds, in UTC
// ("2024-01-01T07:00:00.123456Z").
type Time struct{ time.Time }

// TimeLayout is how Time marshals.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler (RFC 3339, any precision).
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return errors.New("time: want an RFC 3339 string")
	}
	v, err := time.Parse(time.RFC3339Nano, string(b[1:len(b)-1]))
	if err != nil {
		return err
	}
	t.Time = v.UTC()
	return nil
}

// micros converts microseconds since the epoch to a Time.
func micros(us int64) Time { return Time{time.UnixMicro(us).UTC()} }

// MapResult is GET /api/v1/map.
type MapResult struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// Node is one endpoint (an IP address) of the map.
type Node struct {
	ID   string `json:"id"` // = IP
	IP   string `json:"ip"`
	Name string `json:"name"` // host name from DNS / Host / SNI, else the IP
	Kind string `json:"kind"` // client, server or both
	// Requests, Errors and Bytes sum the edges the node takes part in.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	Bytes    int64 `json:"bytes"`
}

// Edge is the traffic from one client node to one server node over one
// protocol.
type Edge struct {
	ID       string `json:"id"`       // "<source>-><target>/<protocol>"
	Source   string `json:"source"`   // client node id
	Target   string `json:"target"`   // server node id
	Protocol string `json:"protocol"` // http, tls, tcp or dns
	Count    int64  `json:"count"`
	Errors   int64  `json:"errors"`
	P50US    int64  `json:"p50_us"`
	P95US    int64  `json:"p95_us"`
	Bytes    int64  `json:"bytes"`
}

// TimelineResult is GET /api/v1/timeline. Buckets cover [From, To) in
// steps of StepUS aligned to multiples of the step since the epoch; empty
// buckets are included.
type TimelineResult struct {
	StepUS  int64     `json:"step_us"`
	Buckets []Bucket  `json:"buckets"`
	Quality []Quality `json:"quality"`
}

// Bucket is one timeline step.
type Bucket struct {
	TS     Time  `json:"ts"`
	Count  int64 `json:"count"`
	Errors int64 `json:"errors"`
	P50US  int64 `json:"p50_us"`
	P95US  int64 `json:"p95_us"`
}

// Quality is the capture-quality line of one timeline step: what the
// agents in scope reported (capture_status) and the bytes the parser found
// missing (parse_status).
type Quality struct {
	TS           Time  `json:"ts"`
	Captured     int64 `json:"captured"`
	Dropped      int64 `json:"dropped"`
	Overflow     int64 `json:"overflow"`
	Gaps         int64 `json:"gaps"`
	MissingBytes int64 `json:"missing_bytes"`
}

// Page is GET /api/v1/communications.
type Page struct {
	Items []Summary `json:"items"`
	// Next is the cursor of the following page; empty at the end.
	Next string `json:"next"`
}

// Summary is one HTTP exchange in a list.
type Summary struct {
	ID            string `json:"id"`
	TS            Time   `json:"ts"`
	TSEnd         Time   `json:"ts_end"`
	DurationUS    int64  `json:"duration_us"`
	Agent         string `json:"agent"`
	ClientIP      string `json:"client_ip"`
	ClientPort    int32  `json:"client_port"`
	ServerIP      string `json:"server_ip"`
	ServerPort    int32  `json:"server_port"`
	ClientName    string `json:"client_name"`
	ServerName    string `json:"server_name"`
	Method        string `json:"method"`
	Host          string `json:"host"`
	Path          string `json:"path"`
	Status        int32  `json:"status"`
	ReqBodyBytes  int64  `json:"req_body_bytes"`
	RespBodyBytes int64  `json:"resp_body_bytes"`
	ContentType   string `json:"content_type"`
	TLS           bool   `json:"tls"`
	Complete      bool   `json:"complete"`
	// Error is true when the exchange counts as an error: status >= 500,
	// no response (status 0), or a parse error (ParseError).
	Error bool `json:"error"`
	// ParseError is the parser's message for a malformed exchange.
	ParseError string `json:"parse_error,omitempty"`
	TCPID      string `json:"tcp_id"`
}

// Detail is GET /api/v1/communications/{id}.
type Detail struct {
	Summary
	URI         string      `json:"uri"`
	Query       string      `json:"query"`
	Version     string      `json:"version"`
	Reason      string      `json:"reason"`
	ReqHeaders  [][2]string `json:"req_headers"`
	RespHeaders [][2]string `json:"resp_headers"`
	ReqBody     string      `json:"req_body"`
	RespBody    string      `json:"resp_body"`
	UserAgent   string      `json:"user_agent"`
	CommunityID string      `json:"community_id"`
	Seq         int32       `json:"seq"`
	TCP         *TCPInfo    `json:"tcp"`
	TLSInfo     *TLSInfo    `json:"tls_info"`
}

// TCPInfo is the TCP connection an exchange travelled on.
type TCPInfo struct {
	ID              string   `json:"id"`
	TS              Time     `json:"ts"`
	TSEnd           Time     `json:"ts_end"`
	DurationUS      int64    `json:"duration_us"`
	PacketsC2S      int64    `json:"packets_c2s"`
	PacketsS2C      int64    `json:"packets_s2c"`
	BytesC2S        int64    `json:"bytes_c2s"`
	BytesS2C        int64    `json:"bytes_s2c"`
	MissingBytes    int64    `json:"missing_bytes"`
	Retransmissions int64    `json:"retransmissions"`
	OutOfOrder      int64    `json:"out_of_order"`
	RTTUS           int64    `json:"rtt_us"`
	Close           string   `json:"close"`
	SawSYN          bool     `json:"saw_syn"`
	AppProtocol     string   `json:"app_protocol"`
	HTTPExchanges   int32    `json:"http_exchanges"`
	LimitHits       int32    `json:"limit_hits"`
	Segments        []string `json:"segments"`
}

// TLSInfo is the TLS handshake of an exchange's connection.
type TLSInfo struct {
	Version   string `json:"version"`
	SNI       string `json:"sni"`
	ALPN      string `json:"alpn"`
	Cipher    string `json:"cipher"`
	Decrypted bool   `json:"decrypted"`
	KeyStatus string `json:"key_status"`
}

// SequenceResult is GET /api/v1/sequence: the selected exchanges in time
// order between the participants they involve.
type SequenceResult struct {
	Participants []Participant `json:"participants"`
	Calls        []Call        `json:"calls"`
}

// Participant is a lifeline of the sequence diagram (a node).
type Participant struct {
	ID   string `json:"id"` // = IP
	Name string `json:"name"`
	IP   string `json:"ip"`
}

// Call is one exchange of the sequence diagram.
type Call struct {
	ID         string `json:"id"`
	TS         Time   `json:"ts"`
	DurationUS int64  `json:"duration_us"`
	From       string `json:"from"` // participant id
	To         string `json:"to"`
	Label      string `json:"label"` // "GET /path"
	Status     int32  `json:"status"`
	Error      bool   `json:"error"`
}

// StatusResult is GET /api/v1/status.
type StatusResult struct {
	Agents []AgentStatus `json:"agents"`
	Series []StatusPoint `json:"series"`
}

// AgentStatus is the latest state of one agent in the window: counters
// summed over its streams' latest reports.
type AgentStatus struct {
	Agent            string `json:"agent"`
	LastSeen         Time   `json:"last_seen"`
	Streams          int    `json:"streams"`
	Captured         int64  `json:"captured"`
	Filtered         int64  `json:"filtered"`
	Dropped          int64  `json:"dropped"`
	Overflow         int64  `json:"overflow"`
	SegmentsUploaded int64  `json:"segments_uploaded"`
	BytesUploaded    int64  `json:"bytes_uploaded"`
	Errors           int64  `json:"errors"`
	// ParseLagS is how far parsing trails capture, in seconds: the time
	// between the agent's last report and the end of the newest parsed
	// segment (0 when parsing is up to date, -1 when nothing was parsed).
	ParseLagS float64 `json:"parse_lag_s"`
}

// StatusPoint is one status report of one agent (streams summed): the
// increase of each counter since the agent's previous report (the agents
// report cumulative counters; a restart counts from zero).
type StatusPoint struct {
	Agent    string `json:"agent"`
	TS       Time   `json:"ts"`
	Captured int64  `json:"captured"`
	Filtered int64  `json:"filtered"`
	Dropped  int64  `json:"dropped"`
	Overflow int64  `json:"overflow"`
}
