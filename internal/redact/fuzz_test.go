package redact

import (
	"bytes"
	"testing"
)

// FuzzBody checks that the prefilter never changes the result: Body must
// equal running every pattern on every input.
func FuzzBody(f *testing.F) {
	for _, s := range []string{
		`{"password":"x"}`, `a=1&token=2`, "Bearer abc", "to\u212Aen=1", "pa\u017Fsword=1",
		`{"API_KEY" : "k"}`, `user[secret]=s`, `x%5Bpasswd%5D=y`, `nothing`, "",
	} {
		f.Add([]byte(s))
	}
	cfg := Default()
	r := New(cfg)
	f.Fuzz(func(t *testing.T, b []byte) {
		want := b
		for _, re := range cfg.BodyPatterns {
			if m := re.FindAllSubmatchIndex(want, -1); len(m) > 0 {
				want = replace(want, m)
			}
		}
		in := bytes.Clone(b)
		got := r.Body(b)
		if !bytes.Equal(got, want) {
			t.Fatalf("Body(%q) = %q, want %q", b, got, want)
		}
		if !bytes.Equal(b, in) {
			t.Fatalf("Body modified its input")
		}
	})
}
