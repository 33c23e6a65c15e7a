package query

import (
	"github.com/flowlake/flowlake/internal/filter"
	"github.com/flowlake/flowlake/schema"
)

// derive names how a field's value is computed from columns.
type derive uint8

const (
	dColumn      derive = iota // the column col
	dConstStr                  // constS
	dConstBool                 // constB
	dHTTPError                 // schema.HTTPIsError(status, error)
	dTCPError                  // schema.TCPIsError(close)
	dDNSError                  // schema.DNSIsError(responded, rcode)
	dTCPProto                  // schema.TCPEdgeProtocol(app_protocol, http_exchanges)
	dTCPTLS                    // app_protocol == "tls"
	dTCPComplete               // missing_bytes == 0
)

// fieldDef is how one filter base field reads from one table.
type fieldDef struct {
	derive derive
	col    string   // dColumn
	cols   []string // the columns a derived value reads
	constS string
	constB bool
}

// tableDef is a lake table as the engine scans it: the filter fields it
// answers and the column holding the row time.
type tableDef struct {
	name   string
	fields map[string]fieldDef
}

func col(c string) fieldDef { return fieldDef{derive: dColumn, col: c, cols: []string{c}} }

// columns returns the columns a field reads.
func (f fieldDef) columns() []string { return f.cols }

var httpTable = &tableDef{name: schema.TableHTTP, fields: map[string]fieldDef{
	"host": col("host"), "path": col("path"), "query": col("query"), "uri": col("uri"), "method": col("method"),
	"status": col("status"), "client_ip": col("client_ip"), "server_ip": col("server_ip"),
	"client_name": col("client_name"), "server_name": col("server_name"), "port": col("server_port"),
	"client_port": col("client_port"), "duration": col("duration_us"), "tls": col("tls"), "complete": col("complete"),
	"error":       {derive: dHTTPError, cols: []string{"status", "error"}},
	"parse_error": col("error"), "agent": col("agent"), "content_type": col("content_type"),
	"user_agent": col("user_agent"), "req_body_bytes": col("req_body_bytes"), "resp_body_bytes": col("resp_body_bytes"),
	"protocol": {derive: dConstStr, constS: schema.ProtoHTTP},
	"id":       col("id"), "tcp_id": col("tcp_id"), "ts": col("ts"),
}}

var tcpTable = &tableDef{name: schema.TableTCP, fields: map[string]fieldDef{
	"client_ip": col("client_ip"), "server_ip": col("server_ip"), "client_name": col("client_name"),
	"server_name": col("server_name"), "port": col("server_port"), "client_port": col("client_port"),
	"duration": col("duration_us"),
	"tls":      {derive: dTCPTLS, cols: []string{"app_protocol"}},
	"complete": {derive: dTCPComplete, cols: []string{"missing_bytes"}},
	"error":    {derive: dTCPError, cols: []string{"close"}},
	"agent":    col("agent"),
	"protocol": {derive: dTCPProto, cols: []string{"app_protocol", "http_exchanges"}},
	"id":       col("id"), "tcp_id": col("id"), "ts": col("ts"),
}}

var dnsTable = &tableDef{name: schema.TableDNS, fields: map[string]fieldDef{
	"client_ip": col("client_ip"), "server_ip": col("server_ip"),
	"client_name": {derive: dConstStr}, "server_name": {derive: dConstStr},
	"port": col("server_port"), "client_port": col("client_port"), "duration": col("latency_us"),
	"tls":      {derive: dConstBool},
	"complete": {derive: dConstBool, constB: true},
	"error":    {derive: dDNSError, cols: []string{"responded", "rcode"}},
	"agent":    col("agent"),
	"protocol": {derive: dConstStr, constS: schema.ProtoDNS},
	"id":       col("id"), "ts": col("ts"),
}}

var edgesTable = &tableDef{name: schema.TableEdges1m, fields: map[string]fieldDef{
	"agent": col("agent"), "protocol": col("protocol"), "client_ip": col("client_ip"), "server_ip": col("server_ip"),
	"port": col("server_port"), "client_name": col("client_name"), "server_name": col("server_name"),
	"tls": col("tls"), "ts": col("ts"),
}}

var captureStatusTable = &tableDef{name: schema.TableCaptureStatus, fields: map[string]fieldDef{
	"agent": col("agent"), "ts": col("ts"),
}}

var parseStatusTable = &tableDef{name: schema.TableParseStatus, fields: map[string]fieldDef{
	"agent": col("agent"), "ts": col("ts"),
}}

var tlsTable = &tableDef{name: schema.TableTLS, fields: map[string]fieldDef{
	"agent": col("agent"), "ts": col("ts"), "tcp_id": col("tcp_id"),
}}

// supports reports whether every field e reads is defined for t.
func (t *tableDef) supports(e *filter.Expr) bool {
	ok := true
	e.Walk(func(c *filter.Cmp) {
		if _, has := t.fields[c.Field]; !has {
			ok = false
		}
	})
	return ok
}

// exprColumns returns the columns e reads from t.
func (t *tableDef) exprColumns(e *filter.Expr) []string {
	var out []string
	e.Walk(func(c *filter.Cmp) {
		out = append(out, t.fields[c.Field].columns()...)
	})
	return out
}

// Expression builders for conditions the engine adds to a user's filter.

func and(args ...*filter.Expr) *filter.Expr {
	var keep []*filter.Expr
	for _, a := range args {
		if a == nil {
			continue
		}
		if a.Kind == filter.KindAnd {
			keep = append(keep, a.Args...)
		} else {
			keep = append(keep, a)
		}
	}
	switch len(keep) {
	case 0:
		return nil
	case 1:
		return keep[0]
	}
	return &filter.Expr{Kind: filter.KindAnd, Args: keep}
}

func cmpExpr(c filter.Cmp) *filter.Expr { return &filter.Expr{Kind: filter.KindCmp, Cmp: &c} }

// tsRange selects rows with from <= ts < to.
func tsRange(from, to int64) *filter.Expr {
	return and(
		cmpExpr(filter.Cmp{Field: "ts", Type: filter.Time, Op: filter.Ge, Int: from}),
		cmpExpr(filter.Cmp{Field: "ts", Type: filter.Time, Op: filter.Lt, Int: to}),
	)
}

// strIn selects rows whose field is one of vals (sorted, unique).
func strIn(field string, vals []string) *filter.Expr {
	return cmpExpr(filter.Cmp{Field: field, Type: filter.String, Op: filter.In, Strs: vals})
}

// scopeExpr restricts to the agents of scope (nil: no restriction).
func scopeExpr(scope []string) *filter.Expr {
	if scope == nil {
		return nil
	}
	return strIn("agent", sortedUnique(scope))
}
