package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseAndRows(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	b, _ := json.Marshal(Status{Version: Version, Agent: "web-1", Time: at, Interface: "eth0",
		Streams: []Stream{{Stream: 0, Captured: 10, Dropped: 2}, {Stream: 1, Captured: 7, Overflow: 1}}})
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	rows := s.Rows()
	if len(rows) != 2 || rows[0].TS != at.UnixMicro() || rows[0].Dropped != 2 || rows[1].Stream != 1 || rows[1].Overflow != 1 || rows[1].Interface != "eth0" {
		t.Fatalf("rows %+v", rows)
	}
	for in, want := range map[string]string{
		`not json`: "status document",
		`{"version":2,"agent":"a","time":"2024-01-01T00:00:00Z"}`:   "version 2",
		`{"version":1,"agent":"a/b","time":"2024-01-01T00:00:00Z"}`: "agent id",
		`{"version":1,"agent":"a"}`:                                 "no time",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
