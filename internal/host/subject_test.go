package host

import "testing"

func TestSubjectMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, subject string
		want             bool
	}{
		{"flowlake.events", "flowlake.events", true},
		{"flowlake.events", "flowlake.event", false},
		{"flowlake.*", "flowlake.events", true},
		{"flowlake.*", "flowlake.events.raw", false},
		{"flowlake.>", "flowlake.events.raw", true},
		{"flowlake.>", "flowlake", false},
		{">", "a.b", true},
		{"*.events", "flowlake.events", true},
		{"a.b.c", "a.b", false},
	} {
		if got := subjectMatches(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("subjectMatches(%q, %q) = %v", tc.pattern, tc.subject, got)
		}
	}
}
