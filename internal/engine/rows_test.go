package engine

import (
	"strings"
	"testing"
)

func TestIsText(t *testing.T) {
	long := strings.Repeat("héllo wörld ", 200) // > 1024 bytes, multi-byte runes cut by the sample
	cases := []struct {
		in   string
		want bool
	}{
		{"plain text\r\n", true},
		{`{"a":"ü"}`, true},
		{long, true},
		{"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", false},
		{strings.Repeat("\x00\x01\x02", 100), false},
		{"text then a cut rune \xc3", true},
	}
	for _, c := range cases {
		if got := isText([]byte(c.in)); got != c.want {
			t.Errorf("isText(%.20q) = %v", c.in, got)
		}
	}
}

func TestSplitURI(t *testing.T) {
	cases := []struct{ uri, path, query string }{
		{"/a/b?x=1&y=2", "/a/b", "x=1&y=2"},
		{"/a#frag", "/a", ""},
		{"http://example.com/p?q=1", "/p", "q=1"},
		{"http://example.com", "/", ""},
		{"http://example.com?q", "/?q", ""},
		{"*", "*", ""},
		{"example.com:443", "example.com:443", ""},
	}
	for _, c := range cases {
		p, q := splitURI(c.uri)
		if c.uri == "http://example.com?q" {
			if p != "/" || q != "q" {
				t.Errorf("splitURI(%q) = %q, %q", c.uri, p, q)
			}
			continue
		}
		if p != c.path || q != c.query {
			t.Errorf("splitURI(%q) = %q, %q; want %q, %q", c.uri, p, q, c.path, c.query)
		}
	}
}

func TestHostOnly(t *testing.T) {
	cases := map[string]string{
		"Example.COM":     "example.com",
		"example.com:80":  "example.com",
		"10.0.0.1":        "",
		"10.0.0.1:8080":   "",
		"[::1]:80":        "",
		"[fe80::1]":       "",
		"":                "",
		"api.internal:99": "api.internal",
	}
	for in, want := range cases {
		if got := hostOnly(in); got != want {
			t.Errorf("hostOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBodyPreview(t *testing.T) {
	e := New(Config{}, &Collector{})
	if got := e.body([]byte(`{"password":"hunter2","user":"bob"}`), "application/json"); strings.Contains(got, "hunter2") || !strings.Contains(got, "bob") {
		t.Errorf("redaction: %s", got)
	}
	if got := e.body([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00"), "image/png; q=1"); got != "[binary image/png]" {
		t.Errorf("binary: %q", got)
	}
	if got := e.body(nil, ""); got != "" {
		t.Errorf("empty: %q", got)
	}
}
