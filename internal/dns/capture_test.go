package dns

import (
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/flowlake/flowlake/internal/tcp"
)

// captureResult is what one run of the Tracker over a capture produced.
type captureResult struct {
	rows      []Query
	stats     Stats
	udpNames  map[string]bool // first-question names of UDP messages, via Parse
	answers   map[string][]netip.Addr
	pendingAt int // queries pending just before Flush
}

// copyQuery returns a copy of q that outlives the emit call. An empty
// Answers is nil or not depending on the Tracker's reused buffer (the
// engine copies only non-empty lists); the copy holds nil for both, so
// that rows compare by value.
func copyQuery(q *Query) Query {
	c := *q
	c.Answers = nil
	if len(q.Answers) > 0 {
		c.Answers = slices.Clone(q.Answers)
	}
	return c
}

// runCapture feeds a capture to a Tracker: UDP payloads on DNS ports as
// datagrams, TCP connections on port 53 through NewStream in capture order
// (the captures used here have no loss or reordering).
func runCapture(t testing.TB, segs []segment, timeout int64) captureResult {
	t.Helper()
	return runCaptureSplit(t, segs, timeout, nil)
}

// runCaptureSplit is runCapture with checkpoints: before the segment of
// each index in splits (ascending; len(segs) for after the last one), the
// Tracker and every Stream are marshalled and replaced by ones restored
// from their state, as parse does between capture segments.
func runCaptureSplit(t testing.TB, segs []segment, timeout int64, splits []int) captureResult {
	t.Helper()
	res := captureResult{udpNames: map[string]bool{}, answers: map[string][]netip.Addr{}}
	emit := func(q *Query) { res.rows = append(res.rows, copyQuery(q)) }
	onAnswer := func(name string, ip netip.Addr) { res.answers[name] = append(res.answers[name], ip) }
	tr := NewTracker(timeout, emit)
	tr.OnAnswer(onAnswer)

	type connKey struct{ a, b Endpoint }
	streams := map[connKey]*Stream{}
	clients := map[connKey]Endpoint{}
	checkpoint := func() {
		st, err := tr.MarshalState()
		if err != nil {
			t.Fatalf("marshal tracker: %v", err)
		}
		if tr, err = RestoreTracker(timeout, st, emit); err != nil {
			t.Fatalf("restore tracker: %v", err)
		}
		tr.OnAnswer(onAnswer)
		for k, s := range streams {
			st, err := s.MarshalState()
			if err != nil {
				t.Fatalf("marshal stream: %v", err)
			}
			if streams[k], err = RestoreStream(tr, st); err != nil {
				t.Fatalf("restore stream: %v", err)
			}
		}
	}
	var last int64
	for i, s := range segs {
		for len(splits) > 0 && splits[0] <= i {
			checkpoint()
			splits = splits[1:]
		}
		tr.Advance(s.ts)
		last = s.ts
		if !dnsPort(s.src.Port) && !dnsPort(s.dst.Port) {
			continue
		}
		if !s.tcp {
			tr.Packet(s.ts, "udp", s.src, s.dst, s.payload)
			if m, err := Parse(s.payload); err == nil && m.Name != "" {
				res.udpNames[m.Name] = true
			}
			continue
		}
		k := connKey{s.src, s.dst}
		if s.dst.IP.Less(s.src.IP) || (s.dst.IP == s.src.IP && s.dst.Port < s.src.Port) {
			k = connKey{s.dst, s.src}
		}
		st := streams[k]
		if st == nil {
			client, server := s.src, s.dst
			if !s.syn || s.ack { // handshake not seen: the DNS port is the server
				if dnsPort(s.src.Port) {
					client, server = s.dst, s.src
				}
			}
			st = NewStream(tr, client, server)
			streams[k] = st
			clients[k] = client
		}
		if len(s.payload) == 0 {
			continue
		}
		dir := tcp.ServerToClient
		if s.src == clients[k] {
			dir = tcp.ClientToServer
		}
		st.Data(dir, s.ts, s.payload)
	}
	for range splits {
		checkpoint()
	}
	keys := make([]connKey, 0, len(streams))
	for k := range streams {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].a.Port < keys[j].a.Port })
	for _, k := range keys {
		streams[k].Close(last)
	}
	res.pendingAt = tr.Pending()
	tr.Flush()
	res.stats = tr.Stats()
	return res
}

func TestCapturesAgainstTruth(t *testing.T) {
	const timeout = 5e9
	cases := []struct {
		stem string
		// extraNames are row names that are not question names: the owners
		// of the first answer of responses without a question (mDNS).
		extraNames []string
		check      func(t *testing.T, r captureResult)
	}{
		{stem: "gop-test_dns", check: func(t *testing.T, r captureResult) {
			// Ten queries, no responses: all emitted unanswered, by Flush,
			// in capture-time order.
			if r.pendingAt != 10 {
				t.Errorf("pending before Flush = %d, want 10", r.pendingAt)
			}
			for i, q := range r.rows {
				if q.Responded || q.RCode != "" || q.LatencyNS != 0 {
					t.Errorf("row %d answered: %+v", i, q)
				}
				if i > 0 && q.TS < r.rows[i-1].TS {
					t.Errorf("row %d out of order", i)
				}
			}
			if q := r.rows[0]; q.Name != "picslife.ru" || q.QType != "A" || q.ID != 0xf618 {
				t.Errorf("first row = %+v", q)
			}
		}},
		{stem: "ark-dns-udp", check: func(t *testing.T, r captureResult) {
			wantRow(t, r.rows, 0, "www.github.com", "A", true, "NOERROR", 865000, 2)
			wantRow(t, r.rows, 1, "www.github.com", "A", true, "NOERROR", 9804000, 2)
			wantRow(t, r.rows, 2, "10.100.10.10.in-addr.arpa", "ANY", false, "", 0, 0)
			if got := r.rows[0].Answers; !slices.Equal(got, []string{"CNAME github.com", "A 192.30.252.128"}) {
				t.Errorf("answers = %q", got)
			}
			if got := r.answers["www.github.com"]; !slices.Equal(got, []netip.Addr{
				netip.MustParseAddr("192.30.252.128"), netip.MustParseAddr("192.30.252.130")}) {
				t.Errorf("OnAnswer(www.github.com) = %v", got)
			}
			if len(r.answers) != 1 {
				t.Errorf("OnAnswer names = %v", r.answers)
			}
		}},
		{stem: "ark-dns-tcp", check: func(t *testing.T, r captureResult) {
			// tshark lists 15 and 9 addresses: the rest are glue in the
			// additional section, which rows do not carry.
			wantRow(t, r.rows, 0, "google.com", "A", true, "NOERROR", 932000, 11)
			wantRow(t, r.rows, 1, "aol.com", "A", true, "NOERROR", 989000, 5)
			for _, q := range r.rows {
				if q.Transport != "tcp" || q.Server.Port != 53 || q.Client.IP != netip.MustParseAddr("10.180.156.141") {
					t.Errorf("row endpoints = %+v", q)
				}
			}
			if got := len(r.answers["google.com"]); got != 11 {
				// 11 A records for google.com; the other 4 are NS glue
				// in the additional section.
				t.Errorf("OnAnswer(google.com) gave %d addresses, want 11", got)
			}
		}},
		{stem: "sv-dns-udp-google-a-aaaa-mx", check: func(t *testing.T, r captureResult) {
			wantRow(t, r.rows, 0, "google.com", "A", true, "NOERROR", 65260000, 12)
			wantRow(t, r.rows, 1, "google.com", "AAAA", true, "NOERROR", 63948000, 1)
			wantRow(t, r.rows, 2, "google.com", "MX", true, "NOERROR", 63555000, 5)
			if got := r.rows[0].Answers[0]; got != "A 216.197.242.244" {
				t.Errorf("A answer = %q", got)
			}
			if got := r.rows[1].Answers; !slices.Equal(got, []string{"AAAA 2607:f8b0:400f:801::200e"}) {
				t.Errorf("AAAA answers = %q", got)
			}
			if got := r.rows[2].Answers; !slices.Equal(got, []string{"MX 10 aspmx.l.google.com",
				"MX 20 alt1.aspmx.l.google.com", "MX 30 alt2.aspmx.l.google.com",
				"MX 40 alt3.aspmx.l.google.com", "MX 50 alt4.aspmx.l.google.com"}) {
				t.Errorf("MX answers = %q", got)
			}
			if got := len(r.answers["google.com"]); got != 13 {
				t.Errorf("OnAnswer(google.com) gave %d addresses, want 13", got)
			}
		}},
		{stem: "ppp-DnsPackets", extraNames: []string{"2.0.0.10.in-addr.arpa"}, check: func(t *testing.T, r captureResult) {
			var mdnsUnmatched, paired int
			for _, q := range r.rows {
				if q.Responded && q.Client.Port == 5353 {
					mdnsUnmatched++
				}
				if q.Responded && q.Server.Port == 53 {
					paired++
				}
			}
			// mDNS responses go to the group, not to a querier: none pair.
			if mdnsUnmatched != 14 {
				t.Errorf("mDNS response rows = %d, want 14", mdnsUnmatched)
			}
			if paired != 212 {
				t.Errorf("rows with a response from port 53 = %d, want 212", paired)
			}
			// Case is kept as sent.
			if !slices.ContainsFunc(r.rows, func(q Query) bool { return q.Name == "wpad.HOME" }) {
				t.Error("no row for wpad.HOME")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.stem, func(t *testing.T) {
			tr := loadTruth(t, c.stem)
			segs := readSegments(t, c.stem+".pcap")
			r := runCapture(t, segs, timeout)

			if r.stats.Queries != int64(tr.DNSQueries) || r.stats.Responses != int64(tr.DNSResponses) {
				t.Errorf("queries/responses = %d/%d, truth %d/%d", r.stats.Queries, r.stats.Responses, tr.DNSQueries, tr.DNSResponses)
			}
			if r.stats.Malformed != 0 {
				t.Errorf("malformed = %d", r.stats.Malformed)
			}
			// Every message is in exactly one row.
			if want := r.stats.Queries + r.stats.Responses - r.stats.Paired; int64(len(r.rows)) != want {
				t.Errorf("rows = %d, want queries+responses-paired = %d (stats %+v)", len(r.rows), want, r.stats)
			}
			if r.stats.Paired+r.stats.Unanswered != r.stats.Queries || r.stats.Paired+r.stats.Unmatched != r.stats.Responses {
				t.Errorf("inconsistent stats %+v", r.stats)
			}
			rowNames := map[string]bool{}
			for _, q := range r.rows {
				if q.Error != "" {
					t.Errorf("row with error: %+v", q)
				}
				rowNames[q.Name] = true
			}
			want := map[string]bool{}
			for _, n := range tr.DNSQueryNames {
				want[n] = true
			}
			if !anyTCP(segs) && !reflect.DeepEqual(r.udpNames, want) {
				t.Errorf("Parse names differ from truth:\n got %v\nwant %v", keys(r.udpNames), tr.DNSQueryNames)
			}
			for _, n := range c.extraNames {
				want[n] = true
			}
			if !reflect.DeepEqual(rowNames, want) {
				t.Errorf("row names differ:\n got %v\nwant %v", keys(rowNames), keys(want))
			}
			// The same input gives the same rows.
			if again := runCapture(t, segs, timeout); !reflect.DeepEqual(again.rows, r.rows) {
				t.Error("second run emitted different rows")
			}
			c.check(t, r)
			t.Logf("%s: %d rows, stats %+v", c.stem, len(r.rows), r.stats)
		})
	}
}

func anyTCP(segs []segment) bool {
	return slices.ContainsFunc(segs, func(s segment) bool { return s.tcp })
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// wantRow checks the main fields of rows[i].
func wantRow(t *testing.T, rows []Query, i int, name, qtype string, responded bool, rcode string, latency int64, answers int) {
	t.Helper()
	if i >= len(rows) {
		t.Fatalf("only %d rows, want row %d", len(rows), i)
	}
	q := rows[i]
	if q.Name != name || q.QType != qtype || q.Responded != responded || q.RCode != rcode || q.LatencyNS != latency || len(q.Answers) != answers {
		t.Errorf("row %d = {Name:%q QType:%q Responded:%v RCode:%q LatencyNS:%d answers:%d}, want {%q %q %v %q %d %d}",
			i, q.Name, q.QType, q.Responded, q.RCode, q.LatencyNS, len(q.Answers), name, qtype, responded, rcode, latency, answers)
	}
}

// TestLooksOnCaptures checks Looks against every UDP payload of the DNS
// captures: DNS-port payloads with one question are accepted, others are
// rejected.
func TestLooksOnCaptures(t *testing.T) {
	var accepted, rejected int
	// ndpi-1kxun adds non-DNS UDP: SSDP, NetBIOS name service (DNS-like),
	// DHCP and unidentified payloads.
	for _, stem := range []string{"gop-test_dns", "ark-dns-udp", "sv-dns-udp-google-a-aaaa-mx", "ppp-DnsPackets", "ndpi-1kxun"} {
		for _, s := range readSegments(t, stem+".pcap") {
			if s.tcp {
				continue
			}
			m, err := Parse(s.payload)
			isDNS := dnsPort(s.src.Port) || dnsPort(s.dst.Port)
			oneQuestion := isDNS && err == nil && len(s.payload) > 5 && s.payload[4] == 0 && s.payload[5] == 1
			got := Looks(s.payload)
			switch {
			case oneQuestion && m.Opcode == 0 && (s.src.Port == 53 || s.dst.Port == 53):
				if !got {
					t.Errorf("%s: Looks rejected a DNS message %+v", stem, m)
				}
				accepted++
			case !isDNS:
				if got {
					t.Errorf("%s: Looks accepted a non-DNS payload from port %d", stem, s.src.Port)
				}
				rejected++
			}
		}
	}
	if accepted != 466 || rejected != 233 {
		t.Errorf("accepted %d, rejected %d: want 466 and 233", accepted, rejected)
	}
}
