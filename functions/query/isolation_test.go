package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	lakequery "github.com/flowlake/flowlake/internal/query"
)

// allComms pages through /communications and returns the ids.
func (e *env) allComms(tok, query string) []lakequery.Summary {
	e.t.Helper()
	var out []lakequery.Summary
	cursor := ""
	for range 100 {
		q := query + "&limit=7"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		var page lakequery.Page
		e.call("GET", "/api/v1/communications"+q, tok, nil, 200, &page)
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		cursor = page.Next
	}
	e.t.Fatal("more than 100 pages")
	return nil
}

func ids(ss []lakequery.Summary) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	slices.Sort(out)
	return out
}

// A user of team red (agent a) never sees agent b's rows, on any data
// route; what each sees equals DuckDB's answer over the same lake with
// the agent condition; admins see both.
func TestIsolation(t *testing.T) {
	e := newEnv(t)
	w := e.window()
	inWindow := fmt.Sprintf("ts >= TIMESTAMP '%s' AND ts < TIMESTAMP '%s'", e.from.Format("2006-01-02 15:04:05"), e.to.Format("2006-01-02 15:04:05"))
	idsOf := func(cond string) []string {
		got := strings1(t, e.db, "SELECT id FROM http WHERE "+inWindow+" AND "+cond+" ORDER BY id")
		if got == nil {
			got = []string{}
		}
		return got
	}
	wantA, wantB := idsOf("agent = 'a'"), idsOf("agent = 'b'")
	if len(wantA) < 10 || len(wantB) < 10 {
		t.Fatalf("test lake: %d exchanges of a, %d of b", len(wantA), len(wantB))
	}
	ipsOf := func(agent string) []string {
		return strings1(t, e.db, "SELECT DISTINCT ip FROM (SELECT client_ip AS ip FROM http WHERE agent = ? UNION SELECT server_ip FROM http WHERE agent = ?) ORDER BY ip", agent, agent)
	}
	onlyB := slices.DeleteFunc(ipsOf("b"), func(ip string) bool { return slices.Contains(ipsOf("a"), ip) })
	if len(onlyB) == 0 {
		t.Fatal("test lake: the captures share every address")
	}

	for _, tc := range []struct {
		user string
		want []string
	}{
		{"alice", wantA},
		{"bob", wantB},
		{"carol", nil}, // in no team: nothing
		{"admin", append(slices.Clone(wantA), wantB...)},
	} {
		t.Run(tc.user, func(t *testing.T) {
			tok := e.tok[tc.user]
			want := slices.Sorted(slices.Values(tc.want))
			if want == nil {
				want = []string{}
			}
			got := ids(e.allComms(tok, w))
			if got == nil {
				got = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("communications: %d ids, DuckDB says %d", len(got), len(want))
			}
			// A filter narrows within the scope, as the same condition in SQL.
			got = ids(e.allComms(tok, w+"&q="+url.QueryEscape("method = GET and status >= 200")))
			var wantF []string
			switch tc.user {
			case "alice":
				wantF = idsOf("agent = 'a' AND method = 'GET' AND status >= 200")
			case "bob":
				wantF = idsOf("agent = 'b' AND method = 'GET' AND status >= 200")
			case "admin":
				wantF = idsOf("method = 'GET' AND status >= 200")
			}
			if len(got) != len(wantF) || (len(got) > 0 && !slices.Equal(got, wantF)) {
				t.Errorf("filtered communications: %d, DuckDB says %d", len(got), len(wantF))
			}

			// Map: the HTTP edges count exactly the exchanges in scope, and
			// no address only b talked to appears for a user of red.
			var m lakequery.MapResult
			e.call("GET", "/api/v1/map"+w, tok, nil, 200, &m)
			var httpCount int64
			for _, ed := range m.Edges {
				if ed.Protocol == "http" {
					httpCount += ed.Count
				}
			}
			if httpCount != int64(len(want)) {
				t.Errorf("map: HTTP edges count %d exchanges, DuckDB says %d", httpCount, len(want))
			}
			if tc.user == "alice" || tc.user == "carol" {
				for _, n := range m.Nodes {
					if slices.Contains(onlyB, n.IP) {
						t.Errorf("map of %s shows %s, an address only agent b saw", tc.user, n.IP)
					}
				}
			}

			// Timeline of HTTP: the buckets count the same exchanges.
			var tl lakequery.TimelineResult
			e.call("GET", "/api/v1/timeline"+w+"&q="+url.QueryEscape("protocol = http"), tok, nil, 200, &tl)
			var tlCount int64
			for _, b := range tl.Buckets {
				tlCount += b.Count
			}
			if tlCount != int64(len(want)) {
				t.Errorf("timeline: %d exchanges, DuckDB says %d", tlCount, len(want))
			}

			// Sequence: only exchanges in scope.
			var seq lakequery.SequenceResult
			e.call("GET", "/api/v1/sequence"+w+"&limit=1000", tok, nil, 200, &seq)
			for _, c := range seq.Calls {
				if !slices.Contains(want, c.ID) {
					t.Errorf("sequence of %s holds %s, outside the scope", tc.user, c.ID)
				}
			}
			if len(seq.Calls) != min(len(want), 1000) {
				t.Errorf("sequence: %d calls, want %d", len(seq.Calls), len(want))
			}

			// Status: only the agents in scope.
			var st lakequery.StatusResult
			e.call("GET", "/api/v1/status"+w, tok, nil, 200, &st)
			var agents []string
			for _, a := range st.Agents {
				agents = append(agents, a.Agent)
			}
			wantAgents := map[string][]string{"alice": {"a"}, "bob": {"b"}, "carol": nil, "admin": {"a", "b"}}[tc.user]
			if !slices.Equal(agents, wantAgents) {
				t.Errorf("status agents %v, want %v", agents, wantAgents)
			}
			for _, p := range st.Series {
				if !slices.Contains(wantAgents, p.Agent) {
					t.Errorf("status series of %s holds agent %s", tc.user, p.Agent)
				}
			}

			// HAR: the exchanges in scope.
			resp, b := e.do("GET", "/api/v1/export/har"+w, tok, nil)
			if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
				t.Errorf("har: %d %s", resp.StatusCode, resp.Header)
			}
			var har struct {
				Log struct {
					Entries []struct {
						ServerIPAddress string `json:"serverIPAddress"`
						Request         struct {
							Method string `json:"method"`
						} `json:"request"`
					} `json:"entries"`
				} `json:"log"`
			}
			if err := json.Unmarshal(b, &har); err != nil {
				t.Fatalf("har: %v", err)
			}
			if len(har.Log.Entries) != len(want) {
				t.Errorf("HAR: %d entries, DuckDB says %d exchanges", len(har.Log.Entries), len(want))
			}
			for _, en := range har.Log.Entries {
				if (tc.user == "alice" || tc.user == "carol") && slices.Contains(onlyB, en.ServerIPAddress) {
					t.Errorf("HAR of %s holds an exchange with %s, an address only agent b saw", tc.user, en.ServerIPAddress)
				}
			}
		})
	}

	// Detail and pcap: a's exchange for alice; b's is not found for her
	// (not forbidden: its existence is not told).
	a0, b0 := wantA[0], wantB[0]
	var d lakequery.Detail
	e.call("GET", "/api/v1/communications/"+a0, e.tok["alice"], nil, 200, &d)
	if d.ID != a0 || d.Agent != "a" {
		t.Errorf("detail %s: %+v", a0, d.Summary)
	}
	var wantHost string
	if err := e.db.QueryRow("SELECT host FROM http WHERE id = ?", a0).Scan(&wantHost); err != nil {
		t.Fatal(err)
	}
	if d.Host != wantHost {
		t.Errorf("detail host %q, DuckDB says %q", d.Host, wantHost)
	}
	e.apiErr("GET", "/api/v1/communications/"+b0, e.tok["alice"], nil, 404, "not_found", "")
	e.apiErr("GET", "/api/v1/communications/"+b0+"/pcap", e.tok["alice"], nil, 404, "not_found", "")
	e.call("GET", "/api/v1/communications/"+b0, e.tok["bob"], nil, 200, nil)
	e.call("GET", "/api/v1/communications/"+b0, e.tok["admin"], nil, 200, nil)

	resp, pcap := e.do("GET", "/api/v1/communications/"+a0+"/pcap", e.tok["alice"], nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.tcpdump.pcap" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("pcap: %d %v", resp.StatusCode, resp.Header)
	}
	if len(pcap) < 24 || !(string(pcap[:4]) == "\xd4\xc3\xb2\xa1" || string(pcap[:4]) == "\x4d\x3c\xb2\xa1" ||
		string(pcap[:4]) == "\xa1\xb2\xc3\xd4" || string(pcap[:4]) == "\xa1\xb2\x3c\x4d") {
		t.Errorf("pcap download is not a pcap file: % x", pcap[:min(len(pcap), 8)])
	}
	// It holds the packets of the exchange's TCP connection: as many as the
	// tcp table counts.
	r, err := pcapgo.NewReader(bytes.NewReader(pcap))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	var wantPackets int
	if err := e.db.QueryRow("SELECT packets_c2s + packets_s2c FROM tcp WHERE id = (SELECT tcp_id FROM http WHERE id = ?)", a0).Scan(&wantPackets); err != nil {
		t.Fatal(err)
	}
	if n != wantPackets || n == 0 {
		t.Errorf("pcap of %s: %d packets, the tcp table says %d", a0, n, wantPackets)
	}
}
