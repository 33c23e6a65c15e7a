package filter

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCanonical(t *testing.T) {
	cases := []struct{ q, want string }{
		{"", ""},
		{"   ", ""},
		{`host = api.example.com`, `host = "api.example.com"`},
		{`host == "api"`, `host = "api"`},
		{`status >= 500`, `status >= 500`},
		{`STATUS>=500`, `status >= 500`},
		{`status != 200`, `not status = 200`},
		{`method in (GET, HEAD, GET)`, `method in ("GET", "HEAD")`},
		{`method not in (GET)`, `not method in ("GET")`},
		{`not not tls = true`, `tls = true`},
		{`tls = FALSE`, `tls = false`},
		{`duration > 1.5s`, `duration > 1500000us`},
		{`duration <= 250ms`, `duration <= 250000us`},
		{`duration < 0`, `duration < 0us`},
		{`port in (443, 80)`, `port in (80, 443)`},
		{`client = 10.0.0.1`, `(client_ip = "10.0.0.1" or client_name = "10.0.0.1")`},
		{`server != db`, `not (server_ip = "db" or server_name = "db")`},
		{`server ~ "^db-"`, `(server_ip ~ "^db-" or server_name ~ "^db-")`},
		{`host ~ "api\." and status >= 500 and not method in (GET, HEAD)`, `(host ~ "api\\." and status >= 500 and not method in ("GET", "HEAD"))`},
		{`a_b`, ``}, // replaced below: error
		{`path !~ "^/health"`, `not path ~ "^/health"`},
		{`(status = 1 or status = 2) and (status = 3 or (status = 4))`, `((status = 1 or status = 2) and (status = 3 or status = 4))`},
		{`status = 1 or status = 2 and status = 3`, `(status = 1 or (status = 2 and status = 3))`},
		{`ts >= 2024-01-01T00:00:00Z`, `ts >= "2024-01-01T00:00:00Z"`},
		{`path = "/a \"b\" \\c"`, `path = "/a \"b\" \\c"`},
		{`user_agent = "curl/8.5.0" AND complete = true OR error = true`, `((user_agent = "curl/8.5.0" and complete = true) or error = true)`},
		{`host = "and"`, `host = "and"`},
		{`status = -1`, `status = -1`},
	}
	for _, c := range cases {
		if c.q == "a_b" {
			continue
		}
		e, err := Parse(c.q)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.q, err)
			continue
		}
		if got := e.String(); got != c.want {
			t.Errorf("Parse(%q) = %s, want %s", c.q, got, c.want)
			continue
		}
		// The canonical form parses to itself.
		e2, err := Parse(e.String())
		if err != nil || e2.String() != c.want {
			t.Errorf("reparse of %q: %v, %v", e.String(), e2, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		q   string
		pos int
		msg string
	}{
		{`hots = x`, 0, `unknown field "hots" (did you mean host?)`},
		{`status >= abc`, 10, `status is a int: want an integer`},
		{`status`, 6, `expected an operator after "status", found end of input`},
		{`status >=`, 9, `expected a value for status, found end of input`},
		{`(status = 1`, 0, `unbalanced "(": missing ")"`},
		{`status = 1)`, 10, `unbalanced ")"`},
		{`status = 1 status = 2`, 11, `expected "and", "or" or end of input, found "status"`},
		{`host = "abc`, 7, `unterminated string`},
		{`host = 'abc'`, 7, `strings are quoted with " not '`},
		{`host ~ "a("`, 7, `bad regular expression`},
		{`host < b`, 5, `operator < does not apply to host, a string`},
		{`status ~ 5`, 7, `operator ~ does not apply to status`},
		{`tls > true`, 4, `operator > does not apply to tls, a boolean`},
		{`tls = yes`, 6, `tls is a bool: want true or false`},
		{`duration > 5`, 11, `duration is a duration: want a duration with a unit`},
		{`method in GET`, 10, `expected "(" after "in"`},
		{`method in ()`, 11, `empty in list`},
		{`method in (GET HEAD)`, 15, `expected "," or ")" in the in list, found "HEAD"`},
		{`method in (GET,`, 15, `expected a value for method, found end of input`},
		{`method not GET`, 11, `expected "in" after "not"`},
		{`and status = 1`, 0, `expected a field name, found "and"`},
		{`status = 1 and`, 14, `expected a comparison (field op value), found end of input`},
		{`status = and`, 9, `expected a value for status, found the keyword "and"`},
		{`status ! 1`, 7, `"!" must be followed by "=" or "~"`},
		{`= 1`, 0, `expected a field name, found "="`},
		{`ts > yesterday`, 5, `ts is a time: want an RFC 3339 time`},
		{"host = \"\xff\"", 8, `invalid UTF-8 in string`},
		{"host = a\xffb", 8, `invalid UTF-8`},
		{strings.Repeat("(", 70) + "status = 1" + strings.Repeat(")", 70), 64, `nested deeper than 64 levels`},
		{strings.Repeat("x", MaxLen+1), MaxLen, `filter longer than`},
	}
	for _, c := range cases {
		_, err := Parse(c.q)
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("Parse(%q): error %v, want *Error", c.q, err)
			continue
		}
		if fe.Pos != c.pos || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("Parse(%q): at %d %q, want at %d %q", c.q, fe.Pos, fe.Msg, c.pos, c.msg)
		}
		if fe.Pos < 0 || fe.Pos > len(c.q) {
			t.Errorf("Parse(%q): position %d outside the input", c.q, fe.Pos)
		}
	}
}

// mapRow is a Row backed by maps.
type mapRow struct {
	s map[string]string
	i map[string]int64
	b map[string]bool
}

func (r mapRow) String(f string) string { return r.s[f] }
func (r mapRow) Int(f string) int64     { return r.i[f] }
func (r mapRow) Bool(f string) bool     { return r.b[f] }

func TestEval(t *testing.T) {
	row := mapRow{
		s: map[string]string{"host": "api.example.com", "method": "POST", "client_ip": "10.0.0.1", "client_name": "web-1", "path": "/v1/users"},
		i: map[string]int64{"status": 503, "duration": 250_000, "port": 443},
		b: map[string]bool{"tls": true},
	}
	cases := []struct {
		q    string
		want bool
	}{
		{``, true},
		{`host ~ "api\." and status >= 500 and not method in (GET, HEAD)`, true},
		{`host ~ "^api\.example\.org$"`, false},
		{`status in (500, 503)`, true},
		{`status < 503`, false},
		{`status <= 503`, true},
		{`duration >= 250ms and duration < 251ms`, true},
		{`duration > 250ms`, false},
		{`client = web-1`, true},
		{`client = 10.0.0.1`, true},
		{`client != web-1`, false},
		{`client != web-2`, true},
		{`client not in (web-2, 10.0.0.2)`, true},
		{`client in (web-2, 10.0.0.1)`, true},
		{`tls = true and port = 443`, true},
		{`tls = false or port != 443`, false},
		{`not (tls = false or port != 443)`, true},
		{`path !~ "^/v1/"`, false},
		{`host = "API.example.com"`, false},
		{`host ~ "(?i)^API\."`, true},
	}
	for _, c := range cases {
		e, err := Parse(c.q)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.q, err)
		}
		if got := e.Eval(row); got != c.want {
			t.Errorf("%q on the row = %v, want %v", c.q, got, c.want)
		}
	}
}

func TestColumnsAndFields(t *testing.T) {
	e, err := Parse(`client = x and (status >= 500 or host ~ y) and not tls = true`)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(e.Columns(), ",")
	if got != "client_ip,client_name,host,status,tls" {
		t.Errorf("Columns = %s", got)
	}
	if (*Expr)(nil).Columns() != nil {
		t.Error("nil expression reads columns")
	}
	names := map[string]bool{}
	for _, f := range Fields() {
		if f.Name == "" || f.Description == "" {
			t.Errorf("field %+v", f)
		}
		switch f.Type {
		case String, Int, Bool, Time, Duration:
		default:
			t.Errorf("field %s has type %q", f.Name, f.Type)
		}
		names[f.Name] = true
	}
	for _, n := range []string{"host", "path", "method", "status", "client", "server", "client_ip", "server_ip", "client_name",
		"server_name", "port", "duration", "tls", "agent", "content_type", "error", "complete", "uri", "user_agent"} {
		if !names[n] {
			t.Errorf("field %s missing", n)
		}
	}
	// Fields returns a copy.
	fs := Fields()
	fs[0].Name = "changed"
	if Fields()[0].Name == "changed" {
		t.Error("Fields shares its slice")
	}
}

func TestIntRange(t *testing.T) {
	cases := []struct {
		q      string
		lo, hi int64
	}{
		{`status = 5`, 5, 5},
		{`status < 5`, -1 << 63, 4},
		{`status <= 5`, -1 << 63, 5},
		{`status > 5`, 6, 1<<63 - 1},
		{`status >= 5`, 5, 1<<63 - 1},
		{`status in (7, 3)`, 3, 7},
	}
	for _, c := range cases {
		e, _ := Parse(c.q)
		lo, hi, ok := e.Cmp.IntRange()
		if !ok || lo != c.lo || hi != c.hi {
			t.Errorf("%s: [%d, %d] %v", c.q, lo, hi, ok)
		}
	}
}
