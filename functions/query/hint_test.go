package query

import (
	"bytes"
	"encoding/json"
	"net/url"
	"testing"
	"time"
)

// The ts hint of the detail and pcap routes changes how the lake is read,
// never the answer; a malformed ts is a 400 naming the parameter.
func TestLookupHint(t *testing.T) {
	e := newEnv(t)
	admin := e.tok["admin"]
	// The list's items, with ts exactly as it is sent.
	var page struct {
		Items []struct {
			ID string `json:"id"`
			TS string `json:"ts"`
		} `json:"items"`
	}
	json.Unmarshal(e.call("GET", "/api/v1/communications"+e.window("limit", "1000"), admin, nil, 200, nil), &page)
	if len(page.Items) < 3 {
		t.Fatalf("%d exchanges in the test lake", len(page.Items))
	}
	items := page.Items[:2]
	items = append(items, page.Items[len(page.Items)-1])
	for _, it := range items {
		base := "/api/v1/communications/" + url.PathEscape(it.ID)
		want := e.call("GET", base, admin, nil, 200, nil)
		wantPcap := e.call("GET", base+"/pcap", admin, nil, 200, nil)
		ts, err := time.Parse(time.RFC3339Nano, it.TS)
		if err != nil {
			t.Fatalf("list ts %q: %v", it.TS, err)
		}
		for _, hint := range []string{
			it.TS, // as listed
			ts.Truncate(time.Millisecond).In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano), // a JavaScript Date, another zone
			ts.Round(time.Second).Format(time.RFC3339),
			ts.Add(-26 * time.Hour).Format(time.RFC3339Nano), // wrong: found by the fallback
			"0001-01-01T00:00:00Z",
			"9999-12-31T23:59:59Z",
		} {
			q := "?ts=" + url.QueryEscape(hint)
			if got := e.call("GET", base+q, admin, nil, 200, nil); !bytes.Equal(got, want) {
				t.Errorf("%s with ts=%s:\n got %s\nwant %s", it.ID, hint, got, want)
			}
			if got := e.call("GET", base+"/pcap"+q, admin, nil, 200, nil); !bytes.Equal(got, wantPcap) {
				t.Errorf("pcap of %s with ts=%s: %d bytes, want %d", it.ID, hint, len(got), len(wantPcap))
			}
		}
		// Scope still applies: bob (agent b) does not find agent a's rows,
		// hinted or not.
		var d struct {
			Agent string `json:"agent"`
		}
		json.Unmarshal(want, &d)
		if d.Agent == "a" {
			e.apiErr("GET", base+"?ts="+url.QueryEscape(it.TS), e.tok["bob"], nil, 404, "not_found", "")
		}
	}
	// Malformed hints, also for ids that do not exist: checked first.
	for _, tc := range []struct{ ts, want string }{
		{"yesterday", `ts="yesterday" is not an RFC 3339 time`},
		{"2024-13-01T00:00:00Z", `ts="2024-13-01T00:00:00Z" is not an RFC 3339 time`},
		{"2024-01-02T03:04:05", `ts="2024-01-02T03:04:05" is not an RFC 3339 time`},
		{"1714521600000000", `ts="1714521600000000" is not an RFC 3339 time`},
		// An unencoded + arrives as a space.
		{"2024-01-02T03:04:05.123456 01:00", "send it as %2B"},
	} {
		q := "?ts=" + url.QueryEscape(tc.ts)
		for _, id := range []string{items[0].ID, "no-such-id"} {
			e.apiErr("GET", "/api/v1/communications/"+id+q, admin, nil, 400, "bad_request", tc.want)
			e.apiErr("GET", "/api/v1/communications/"+id+"/pcap"+q, admin, nil, 400, "bad_request", tc.want)
		}
	}
	// An empty ts is no hint.
	e.call("GET", "/api/v1/communications/"+url.PathEscape(items[0].ID)+"?ts=", admin, nil, 200, nil)
}
