package filter

// Type is the value type of a field.
type Type string

// Field types, as served by /api/v1/fields.
const (
	String   Type = "string"
	Int      Type = "int"
	Bool     Type = "bool"
	Time     Type = "time"
	Duration Type = "duration"
)

// Field is one name the filter language knows.
type Field struct {
	Name        string `json:"name"`
	Type        Type   `json:"type"`
	Description string `json:"description"`
	// Of lists the base fields a composite field stands for (client is
	// client_ip or client_name): a comparison holds when it holds for any
	// of them, and "!=" / "not in" when it holds for none. Empty for a
	// base field.
	Of []string `json:"-"`
}

// fields is the filter vocabulary, in the order Fields returns it. Base
// field names are the names a Row answers to.
var fields = []Field{
	{Name: "host", Type: String, Description: "HTTP Host header of the request"},
	{Name: "path", Type: String, Description: "request path, without the query string"},
	{Name: "query", Type: String, Description: "query string of the request-target, without the ?"},
	{Name: "uri", Type: String, Description: "raw request-target (path and query)"},
	{Name: "method", Type: String, Description: "HTTP request method (GET, POST, ...)"},
	{Name: "status", Type: Int, Description: "HTTP response status code; 0 when no response was seen"},
	{Name: "client", Type: String, Description: "client IP address or host name", Of: []string{"client_ip", "client_name"}},
	{Name: "server", Type: String, Description: "server IP address or host name", Of: []string{"server_ip", "server_name"}},
	{Name: "client_ip", Type: String, Description: "client IP address"},
	{Name: "server_ip", Type: String, Description: "server IP address"},
	{Name: "client_name", Type: String, Description: "client host name learned from DNS, TLS SNI or Host headers (empty if unknown)"},
	{Name: "server_name", Type: String, Description: "server host name learned from DNS, TLS SNI or Host headers (empty if unknown)"},
	{Name: "port", Type: Int, Description: "server TCP/UDP port"},
	{Name: "client_port", Type: Int, Description: "client TCP/UDP port"},
	{Name: "duration", Type: Duration, Description: "time from the first request byte to the last response byte (DNS: query to answer); write 250ms, 1.5s, 100us"},
	{Name: "tls", Type: Bool, Description: "true when the exchange travelled over TLS"},
	{Name: "complete", Type: Bool, Description: "false when packets of the exchange were missing from the capture"},
	{Name: "error", Type: Bool, Description: "true for errors: HTTP status >= 500, no response, or a parse error (TCP: reset; DNS: no answer or an rcode other than NOERROR)"},
	{Name: "parse_error", Type: String, Description: "parser message for a malformed exchange (empty when none)"},
	{Name: "agent", Type: String, Description: "capture agent that saw the traffic"},
	{Name: "content_type", Type: String, Description: "Content-Type of the response (of the request when the response has none)"},
	{Name: "user_agent", Type: String, Description: "User-Agent request header"},
	{Name: "req_body_bytes", Type: Int, Description: "request body size in bytes"},
	{Name: "resp_body_bytes", Type: Int, Description: "response body size in bytes"},
	{Name: "protocol", Type: String, Description: "application protocol: http, tls, tcp or dns"},
	{Name: "id", Type: String, Description: "exchange id"},
	{Name: "tcp_id", Type: String, Description: "id of the TCP connection"},
	{Name: "ts", Type: Time, Description: "time of the first packet, RFC 3339 (2024-01-01T07:00:00Z)"},
}

// byName indexes fields by name.
var byName = func() map[string]*Field {
	m := make(map[string]*Field, len(fields))
	for i := range fields {
		m[fields[i].Name] = &fields[i]
	}
	return m
}()

// Fields returns the filter vocabulary (a copy), as served by
// /api/v1/fields.
func Fields() []Field {
	out := make([]Field, len(fields))
	for i, f := range fields {
		f.Of = append([]string(nil), f.Of...)
		out[i] = f
	}
	return out
}

// Lookup returns the field called name.
func Lookup(name string) (Field, bool) {
	f, ok := byName[name]
	if !ok {
		return Field{}, false
	}
	return *f, true
}

// bases returns the base fields of f: f itself or what it stands for.
func (f *Field) bases() []string {
	if len(f.Of) > 0 {
		return f.Of
	}
	return []string{f.Name}
}
