package filter

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error is an
// *Error pointing inside the input, and that an accepted filter prints to
// a canonical form that parses back to the same form. Seeds are in
// testdata/fuzz/FuzzParse (one per language feature and error kind).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`host ~ "api\." and status >= 500 and not method in (GET, HEAD)`,
		`client = 10.0.0.1 or server != "db" and duration > 1.5s`,
		`(tls = true) and port in (443, 8443) and ts >= 2024-01-01T00:00:00Z`,
		`path !~ "^/health" and not (error = true)`,
		`status in (`,
		`"unterminated`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		e, err := Parse(q)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%q): %T %v is not *Error", q, err, err)
			}
			if fe.Pos < 0 || fe.Pos > len(q) {
				t.Fatalf("Parse(%q): position %d outside [0, %d]", q, fe.Pos, len(q))
			}
			return
		}
		s := e.String()
		e2, err := Parse(s)
		if err != nil {
			if len(s) > MaxLen {
				return // the canonical form of a long input may exceed the limit
			}
			var fe *Error
			if errors.As(err, &fe) && fe.Msg == "nested deeper than 64 levels" {
				return // canonical parentheses add nesting
			}
			t.Fatalf("canonical form %q of %q does not parse: %v", s, q, err)
		}
		if s2 := e2.String(); s2 != s {
			t.Fatalf("canonical form of %q is not stable:\n%s\n%s", q, s, s2)
		}
		_ = e.Columns()
	})
}
