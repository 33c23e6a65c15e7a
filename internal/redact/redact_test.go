package redact

import (
	"errors"
	"reflect"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
	"testing"
)

func TestHeader(t *testing.T) {
	r := New(Default())
	for _, tc := range []struct{ name, value, want string }{
		{"Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "Bearer [REDACTED]"},
		{"authorization", "Basic dXNlcjpwYXNz", "Basic [REDACTED]"},
		{"AUTHORIZATION", "bearer   abc", "bearer [REDACTED]"},
		{"Authorization", `Digest username="bob", realm="x", response="abc"`, "Digest [REDACTED]"},
		{"Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/s3/aws4_request", "AWS4-HMAC-SHA256 [REDACTED]"},
		{"Proxy-Authorization", "NTLM TlRMTVNTUAABAAAA", "NTLM [REDACTED]"},
		{"Authorization", "rawtoken123", "[REDACTED]"},
		{"Authorization", "secret words here", "[REDACTED]"}, // not a known scheme: nothing kept
		{"Authorization", "Bearer", "[REDACTED]"},
		{"Authorization", "Bearer ", "[REDACTED]"},
		{"Authorization", "", ""},
		{"Cookie", "session=abc; theme=dark", "[REDACTED]"},
		{"Set-Cookie", "id=a3fWa; Expires=Thu, 21 Oct 2021 07:28:00 GMT; Secure", "[REDACTED]"},
		{"x-api-key", "k-123", "[REDACTED]"},
		{"X-API-Key", "Bearer k", "Bearer [REDACTED]"},
		{"Content-Type", "application/json", "application/json"},
		{"Host", "example.com", "example.com"},
		{"X-Authorization-Hint", "x", "x"},
		{strings.Repeat("A", 100), "x", "x"},
	} {
		if got := r.Header(tc.name, tc.value); got != tc.want {
			t.Errorf("Header(%q, %q) = %q, want %q", tc.name, tc.value, got, tc.want)
		}
	}
}

func TestHeaderConfigured(t *testing.T) {
	long := "X-" + strings.Repeat("Very-", 20) + "Long-Secret"
	r := New(Config{Headers: []string{" x-token ", "", long}})
	for _, tc := range []struct{ name, value, want string }{
		{"X-Token", "t", "[REDACTED]"},
		{"Authorization", "Bearer t", "Bearer t"},
		{strings.ToUpper(long), "v", "[REDACTED]"},
	} {
		if got := r.Header(tc.name, tc.value); got != tc.want {
			t.Errorf("Header(%q, %q) = %q, want %q", tc.name, tc.value, got, tc.want)
		}
	}
}

func TestHeaderNoAlloc(t *testing.T) {
	r := New(Default())
	if n := testing.AllocsPerRun(100, func() {
		r.Header("Content-Type", "text/html")
		r.Header("User-Agent", "Mozilla/5.0")
		r.Header("X-Very-Long-Header-Name-That-Is-Not-Configured", "v")
	}); n != 0 {
		t.Errorf("Header allocates %v times for headers that are kept", n)
	}
}

func TestBody(t *testing.T) {
	r := New(Default())
	for _, tc := range []struct{ name, in, want string }{
		{"json password", `{"username":"bob","password":"hunter2"}`, `{"username":"bob","password":"[REDACTED]"}`},
		{"json spacing and case", `{ "Password" : "a b" , "PASSWD":"x"}`, `{ "Password" : "[REDACTED]" , "PASSWD":"[REDACTED]"}`},
		{"json escaped quote", `{"secret":"a\"b\\","next":"v"}`, `{"secret":"[REDACTED]","next":"v"}`},
		{"json empty value", `{"password":""}`, `{"password":""}`},
		{"oauth response",
			`{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"Bearer","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA"}`,
			`{"access_token":"[REDACTED]","token_type":"Bearer","expires_in":3600,"refresh_token":"[REDACTED]"}`},
		{"json key suffixes", `{"client_secret":"s","api_key":"k","apiKey":"k","x-api-key":"k","user.password":"p"}`,
			`{"client_secret":"[REDACTED]","api_key":"[REDACTED]","apiKey":"[REDACTED]","x-api-key":"[REDACTED]","user.password":"[REDACTED]"}`},
		{"json non-secret keys", `{"tokens":5,"token_count":"3","password_hint":"pet","secretary":"ann"}`,
			`{"tokens":5,"token_count":"3","password_hint":"pet","secretary":"ann"}`},
		{"form", `user=bob&password=hunter2&remember=1`, `user=bob&password=[REDACTED]&remember=1`},
		{"form first field", `passwd=p%40ss&x=1`, `passwd=[REDACTED]&x=1`},
		{"form keys", `access_token=abc&api_key=k&API-KEY=k2&token=t`, `access_token=[REDACTED]&api_key=[REDACTED]&API-KEY=[REDACTED]&token=[REDACTED]`},
		{"form nested", `user[name]=bob&user[password]=x&user%5Bpassword%5D=y`, `user[name]=bob&user[password]=[REDACTED]&user%5Bpassword%5D=y`},
		{"query string", `GET /login?user=a&password=b HTTP/1.1`, `GET /login?user=a&password=[REDACTED] HTTP/1.1`},
		{"form lookalike keys", `mypassword_reset=1&notoken=yes`, `mypassword_reset=1&notoken=[REDACTED]`},
		{"bearer", "Authorization: Bearer eyJhbGci.eyJzdWIi.c2ln\r\nX: y", "Authorization: Bearer [REDACTED]\r\nX: y"},
		{"bearer lower case", `curl -H 'authorization: bearer abc+/=='`, `curl -H 'authorization: bearer [REDACTED]'`},
		{"json and bearer", `{"token":"t","note":"use Bearer xyz"}`, `{"token":"[REDACTED]","note":"use Bearer [REDACTED]"}`},
		{"kelvin sign folds to k", "{\"to\u212Aen\":\"x\"}", "{\"to\u212Aen\":\"[REDACTED]\"}"},
		{"nothing", `{"name":"widget","price":3}`, `{"name":"widget","price":3}`},
		{"binary", "\x89PNG\r\n\x1a\n\x00\x00", "\x89PNG\r\n\x1a\n\x00\x00"},
		{"already redacted", `{"password":"[REDACTED]"}`, `{"password":"[REDACTED]"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			got := r.Body(in)
			if string(got) != tc.want {
				t.Errorf("Body(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if string(in) != tc.in {
				t.Errorf("input modified to %q", in)
			}
		})
	}
}

func TestBodyLarge(t *testing.T) {
	r := New(Default())
	in := []byte(strings.Repeat(`{"k":"v"},`, 1000) + `{"password":"p"}`)
	got := r.Body(in)
	if !strings.HasSuffix(string(got), `{"password":"[REDACTED]"}`) || len(got) != len(in)-1+len(Mask) {
		t.Errorf("large body: got suffix %q", got[len(got)-30:])
	}
}

func TestBodyUnchangedIsSameSlice(t *testing.T) {
	r := New(Default())
	in := []byte(`{"name":"widget","token_type":"Bearer","price":3}`)
	got := r.Body(in)
	if &got[0] != &in[0] || len(got) != len(in) {
		t.Error("Body copied a body without secrets")
	}
	if n := testing.AllocsPerRun(100, func() { r.Body(in) }); n != 0 {
		t.Errorf("Body allocates %v times for a body without secrets", n)
	}
}

func TestBodyCustomPatterns(t *testing.T) {
	r := New(Config{BodyPatterns: []*regexp.Regexp{
		regexp.MustCompile(`\b\d{4}-\d{4}-\d{4}-\d{4}\b`),  // no group: whole match
		regexp.MustCompile(`ssn=(\d+)|social=(\d+)`),       // first participating group
		regexp.MustCompile(`(?i)(?:x|y)-secret: ([a-z]+)`), // alternation prefilter
		nil, // ignored
	}})
	for _, tc := range []struct{ in, want string }{
		{"card 1234-5678-9012-3456 ok", "card [REDACTED] ok"},
		{"ssn=123&social=456", "ssn=[REDACTED]&social=[REDACTED]"},
		{"Y-SECRET: abc", "Y-SECRET: [REDACTED]"},
		{"nothing here", "nothing here"},
	} {
		if got := string(r.Body([]byte(tc.in))); got != tc.want {
			t.Errorf("Body(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNilAndEmpty(t *testing.T) {
	var r *Redactor
	if r.Header("Authorization", "Bearer x") != "Bearer x" || string(r.Body([]byte("password=x"))) != "password=x" {
		t.Error("nil Redactor redacted")
	}
	e := New(Config{})
	if e.Header("Authorization", "Bearer x") != "Bearer x" || string(e.Body([]byte("password=x"))) != "password=x" {
		t.Error("empty Config redacted")
	}
	if New(Default()).Body(nil) != nil {
		t.Error("Body(nil) != nil")
	}
}

// TestPrefilter checks the literals extracted from the default patterns:
// they must be present in every match, and specific enough to skip
// ordinary bodies.
func TestPrefilter(t *testing.T) {
	for _, tc := range []struct {
		re   *regexp.Regexp
		want []string
		fold bool
	}{
		{jsonSecret, []string{`api-key"`, `api_key"`, `apikey"`, `passwd"`, `password"`, `secret"`, `token"`}, true},
		{formSecret, []string{
			"api-key%5d=", "api-key=", "api-key]=", "api_key%5d=", "api_key=", "api_key]=", "apikey%5d=", "apikey=", "apikey]=",
			"passwd%5d=", "passwd=", "passwd]=", "password%5d=", "password=", "password]=",
			"secret%5d=", "secret=", "secret]=", "token%5d=", "token=", "token]=",
		}, true},
		{bearerToken, []string{"bearer"}, false},
		{regexp.MustCompile(`abc|x+`), []string{"abc", "x"}, false},
		{regexp.MustCompile(`abc|x*`), nil, false},
		{regexp.MustCompile(`a*b?`), nil, false},
		{regexp.MustCompile(`Hello (world)+`), []string{"hello "}, false},
		{regexp.MustCompile(`(?i)Ünïcode`), nil, false},
		{regexp.MustCompile(`Éclair`), []string{"Éclair"}, false},
		{regexp.MustCompile(`[ab][cd]x.*yz`), []string{"acx", "adx", "bcx", "bdx"}, false},
		{regexp.MustCompile(`(?i)k{2,}`), []string{"k"}, true},
	} {
		tree, err := syntax.Parse(tc.re.String(), syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		got, fold := literals(tree.Simplify())
		sort.Strings(got)
		if !reflect.DeepEqual(got, tc.want) || fold != tc.fold {
			t.Errorf("literals(%s) = %q fold=%v, want %q fold=%v", tc.re, got, fold, tc.want, tc.fold)
		}
	}
	// A case-sensitive non-ASCII literal still finds its match.
	r := New(Config{BodyPatterns: []*regexp.Regexp{regexp.MustCompile(`Éclair=(\w+)`)}})
	if got := string(r.Body([]byte("Éclair=chocolate"))); got != "Éclair=[REDACTED]" {
		t.Errorf("got %q", got)
	}
}

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"Authorization,Cookie,X-Token", []string{"Authorization", "Cookie", "X-Token"}, false},
		{" a , b ", []string{"a", "b"}, false},
		{"single", []string{"single"}, false},
		{"", nil, false},
		{"   ", nil, false},
		{"a,,b", nil, true},
		{"a,", nil, true},
		{",a", nil, true},
		{"two words", nil, true},
		{"tab\there", nil, true},
	} {
		got, err := ParseList(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseList(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, ErrBadList) {
			t.Errorf("ParseList(%q) error %v is not ErrBadList", tc.in, err)
		}
	}
}

func BenchmarkBodyClean(b *testing.B) {
	r := New(Default())
	body := []byte(strings.Repeat(`{"id":12345,"name":"Widget","price":19.99,"tags":["a","b"]}`, 68))[:4096]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Body(body)
	}
}

func BenchmarkBodySecret(b *testing.B) {
	r := New(Default())
	body := []byte(strings.Repeat(`{"id":12345,"name":"Widget","price":19.99,"tags":["a","b"]}`, 67) + `{"password":"hunter2"}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Body(body)
	}
}

func BenchmarkHeader(b *testing.B) {
	r := New(Default())
	b.ReportAllocs()
	for b.Loop() {
		r.Header("Content-Type", "application/json")
		r.Header("Authorization", "Bearer abc")
	}
}
