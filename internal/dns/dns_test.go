package dns

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/tcp"
	"golang.org/x/net/dns/dnsmessage"
)

// msg builds a DNS message: a header, one question (unless name is empty)
// and the answers added by add.
func msg(t testing.TB, h dnsmessage.Header, name string, qtype dnsmessage.Type, add func(b *dnsmessage.Builder) error) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, h)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		t.Fatal(err)
	}
	if name != "" {
		if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: qtype, Class: dnsmessage.ClassINET}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.StartAnswers(); err != nil {
		t.Fatal(err)
	}
	if add != nil {
		if err := add(&b); err != nil {
			t.Fatal(err)
		}
	}
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rh(name string, typ dnsmessage.Type) dnsmessage.ResourceHeader {
	return dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET, TTL: 60}
}

func query(t testing.TB, id uint16, name string, qtype dnsmessage.Type) []byte {
	return msg(t, dnsmessage.Header{ID: id, RecursionDesired: true}, name, qtype, nil)
}

func answerA(t testing.TB, id uint16, name string, ips ...string) []byte {
	return msg(t, dnsmessage.Header{ID: id, Response: true}, name, dnsmessage.TypeA, func(b *dnsmessage.Builder) error {
		for _, ip := range ips {
			if err := b.AResource(rh(name, dnsmessage.TypeA), dnsmessage.AResource{A: netip.MustParseAddr(ip).As4()}); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestParse(t *testing.T) {
	full := msg(t, dnsmessage.Header{ID: 7, Response: true, Authoritative: true, RCode: dnsmessage.RCodeSuccess},
		"WWW.Example.COM.", dnsmessage.TypeA, func(b *dnsmessage.Builder) error {
			steps := []func() error{
				func() error {
					return b.CNAMEResource(rh("WWW.Example.COM.", dnsmessage.TypeCNAME), dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("cdn.example.net.")})
				},
				func() error {
					return b.AResource(rh("cdn.example.net.", dnsmessage.TypeA), dnsmessage.AResource{A: [4]byte{93, 184, 216, 34}})
				},
				func() error {
					return b.AAAAResource(rh("cdn.example.net.", dnsmessage.TypeAAAA), dnsmessage.AAAAResource{AAAA: netip.MustParseAddr("2001:db8::1").As16()})
				},
				func() error {
					return b.MXResource(rh("example.com.", dnsmessage.TypeMX), dnsmessage.MXResource{Pref: 10, MX: dnsmessage.MustNewName("mx.example.com.")})
				},
				func() error {
					return b.NSResource(rh("example.com.", dnsmessage.TypeNS), dnsmessage.NSResource{NS: dnsmessage.MustNewName("ns1.example.com.")})
				},
				func() error {
					return b.PTRResource(rh("1.0.0.127.in-addr.arpa.", dnsmessage.TypePTR), dnsmessage.PTRResource{PTR: dnsmessage.MustNewName("localhost.")})
				},
				func() error {
					return b.SRVResource(rh("_sip._udp.example.com.", dnsmessage.TypeSRV), dnsmessage.SRVResource{Priority: 1, Weight: 2, Port: 5060, Target: dnsmessage.MustNewName("sip.example.com.")})
				},
				func() error {
					return b.TXTResource(rh("example.com.", dnsmessage.TypeTXT), dnsmessage.TXTResource{TXT: []string{`v=spf1 -all`, "a\"b\\c\x01"}})
				},
				func() error {
					return b.SOAResource(rh("example.com.", dnsmessage.TypeSOA), dnsmessage.SOAResource{NS: dnsmessage.MustNewName("ns.example.com."),
						MBox: dnsmessage.MustNewName("hostmaster.example.com."), Serial: 1, Refresh: 2, Retry: 3, Expire: 4, MinTTL: 5})
				},
				func() error {
					return b.UnknownResource(rh("example.com.", 65), dnsmessage.UnknownResource{Type: 65, Data: []byte{0, 1, 0}})
				},
				func() error {
					return b.UnknownResource(rh("example.com.", 999), dnsmessage.UnknownResource{Type: 999, Data: make([]byte, 40)})
				},
			}
			for _, s := range steps {
				if err := s(); err != nil {
					return err
				}
			}
			return nil
		})
	m, err := Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != 7 || !m.Response || m.Opcode != 0 || m.RCode != "NOERROR" || m.Name != "WWW.Example.COM" || m.QType != "A" || m.Truncated {
		t.Errorf("header/question = %+v", m)
	}
	want := []string{
		"CNAME cdn.example.net",
		"A 93.184.216.34",
		"AAAA 2001:db8::1",
		"MX 10 mx.example.com",
		"NS ns1.example.com",
		"PTR localhost",
		"SRV 1 2 5060 sip.example.com",
		`TXT "v=spf1 -all" "a\"b\\c\001"`,
		"SOA ns.example.com hostmaster.example.com 1 2 3 4 5",
		`HTTPS \# 3 000100`,
		`TYPE999 \# 40 ` + strings.Repeat("00", 32) + "...",
	}
	if !slices.Equal(m.Answers, want) {
		t.Errorf("answers:\n got %q\nwant %q", m.Answers, want)
	}
}

func TestParseHeaderFields(t *testing.T) {
	b := msg(t, dnsmessage.Header{ID: 0xbeef, Response: true, OpCode: 4, Truncated: true, RCode: dnsmessage.RCodeNameError}, "x.", dnsmessage.TypeMX, nil)
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != 0xbeef || m.Opcode != 4 || !m.Truncated || m.RCode != "NXDOMAIN" || m.QType != "MX" || m.Name != "x" || m.Answers != nil {
		t.Errorf("got %+v", m)
	}
	// Root name and an unassigned qtype.
	m, err = Parse(msg(t, dnsmessage.Header{}, ".", 4000, nil))
	if err != nil || m.Name != "." || m.QType != "TYPE4000" {
		t.Errorf("root: %+v, %v", m, err)
	}
	// No question at all.
	m, err = Parse(msg(t, dnsmessage.Header{Response: true, RCode: dnsmessage.RCodeFormatError}, "", 0, nil))
	if err != nil || m.Name != "" || m.QType != "" || m.RCode != "FORMERR" {
		t.Errorf("no question: %+v, %v", m, err)
	}
}

func TestParseExtendedRCode(t *testing.T) {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 1, Response: true})
	_ = b.StartQuestions()
	_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName("a."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	_ = b.StartAdditionals()
	var h dnsmessage.ResourceHeader
	if err := h.SetEDNS0(1232, 16<<4, false); err != nil { // BADVERS = 16
		t.Fatal(err)
	}
	h.TTL = 1 << 24 // extended rcode high bits = 1 -> 16 with header rcode 0
	if err := b.OPTResource(h, dnsmessage.OPTResource{}); err != nil {
		t.Fatal(err)
	}
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(out)
	if err != nil || m.RCode != "BADVERS" {
		t.Errorf("got %q, %v", m.RCode, err)
	}
}

func TestParseEscapesNames(t *testing.T) {
	// A label with a space, a backslash and a non-ASCII byte.
	b := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'a', ' ', '\\', 0xff, 'Z', 2, 'c', 'o', 0, 0, 1, 0, 1}
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := `a\032\092\255Z.co`; m.Name != want {
		t.Errorf("name = %q, want %q", m.Name, want)
	}
}

func TestParseBoundsAnswers(t *testing.T) {
	ips := make([]string, 40)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).String()
	}
	m, err := Parse(answerA(t, 1, "many.example.", ips...))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Answers) != MaxAnswers || m.Answers[31] != "A 10.0.0.31" {
		t.Errorf("got %d answers, last %q", len(m.Answers), m.Answers[len(m.Answers)-1])
	}
}

func TestParseMalformed(t *testing.T) {
	good := answerA(t, 9, "example.com.", "1.2.3.4")
	cases := map[string][]byte{
		"empty":           nil,
		"short header":    good[:11],
		"cut question":    good[:15],
		"cut answer":      good[:len(good)-2],
		"pointer loop":    {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1},
		"reserved label":  {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x80, 0, 1, 0, 1},
		"counts too high": {0, 1, 0x80, 0, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 1, 0, 1},
	}
	for name, b := range cases {
		m, err := Parse(b)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if len(b) >= headerLen && m.ID != uint16(b[0])<<8|uint16(b[1]) {
			t.Errorf("%s: header not kept: %+v", name, m)
		}
	}
	// The question survives a cut answer.
	m, _ := Parse(good[:len(good)-2])
	if m.Name != "example.com" || !m.Response {
		t.Errorf("partial = %+v", m)
	}
}

var (
	client  = Endpoint{netip.MustParseAddr("192.0.2.1"), 40000}
	server  = Endpoint{netip.MustParseAddr("192.0.2.53"), 53}
	client6 = Endpoint{netip.MustParseAddr("2001:db8::1"), 40001}
)

// collector keeps copies of emitted rows.
type collector struct{ rows []Query }

func (c *collector) emit(q *Query) { c.rows = append(c.rows, copyQuery(q)) }

func TestTrackerPairs(t *testing.T) {
	var c collector
	tr := NewTracker(2e9, c.emit)
	var named []string
	tr.OnAnswer(func(name string, ip netip.Addr) { named = append(named, name+"="+ip.String()) })

	tr.Packet(1000, "udp", client, server, query(t, 1, "Example.COM.", dnsmessage.TypeA))
	tr.Packet(1500, "udp", client, server, query(t, 2, "other.org.", dnsmessage.TypeAAAA))
	if len(c.rows) != 0 {
		t.Fatalf("queries emitted early: %+v", c.rows)
	}
	// The response echoes the name in another case; it still pairs.
	tr.Packet(4000, "udp", server, client, answerA(t, 1, "example.com.", "198.51.100.7"))
	if len(c.rows) != 1 {
		t.Fatalf("rows = %+v", c.rows)
	}
	got := c.rows[0]
	want := Query{TS: 1000, Transport: "udp", Client: client, Server: server, ID: 1, Name: "Example.COM", QType: "A",
		RCode: "NOERROR", Answers: []string{"A 198.51.100.7"}, LatencyNS: 3000, Responded: true}
	if !equalQuery(got, want) {
		t.Errorf("paired row\n got %+v\nwant %+v", got, want)
	}
	if !slices.Equal(named, []string{"Example.COM=198.51.100.7"}) {
		t.Errorf("OnAnswer = %q", named)
	}
	// A response with the right ID from another server, or for another
	// client, does not pair.
	other := Endpoint{netip.MustParseAddr("192.0.2.99"), 53}
	tr.Packet(5000, "udp", other, client, answerA(t, 2, "other.org.", "1.1.1.1"))
	tr.Packet(5001, "udp", server, client6, answerA(t, 2, "other.org.", "1.1.1.1"))
	if len(c.rows) != 3 || !c.rows[1].Responded || c.rows[1].LatencyNS != 0 || c.rows[1].TS != 5000 ||
		c.rows[1].Client != client || c.rows[1].Server != other || c.rows[2].Client != client6 {
		t.Errorf("unmatched rows = %+v", c.rows[1:])
	}
	if tr.Pending() != 1 {
		t.Errorf("pending = %d", tr.Pending())
	}
	st := tr.Stats()
	if st != (Stats{Queries: 2, Responses: 3, Paired: 1, Unmatched: 2}) {
		t.Errorf("stats = %+v", st)
	}
}

func equalQuery(a, b Query) bool {
	return reflect.DeepEqual(a, b)
}

func TestTrackerTimeoutAndFlushOrder(t *testing.T) {
	var c collector
	tr := NewTracker(100, c.emit)
	tr.Packet(10, "udp", client, server, query(t, 5, "a.", dnsmessage.TypeA))
	tr.Packet(10, "udp", client, server, query(t, 3, "b.", dnsmessage.TypeA))
	tr.Packet(50, "udp", client6, server, query(t, 1, "c.", dnsmessage.TypeA))
	tr.Packet(40, "udp", client, server, query(t, 9, "d.", dnsmessage.TypeA)) // capture time may step back
	tr.Advance(110)
	if len(c.rows) != 0 {
		t.Fatalf("expired too early: %+v", c.rows)
	}
	tr.Advance(111)
	if names := rowNames(c.rows); !slices.Equal(names, []string{"b", "a"}) {
		t.Fatalf("after Advance(111): %q", names)
	}
	tr.Flush()
	if names := rowNames(c.rows); !slices.Equal(names, []string{"b", "a", "d", "c"}) {
		t.Errorf("after Flush: %q", names)
	}
	for _, q := range c.rows {
		if q.Responded || q.Error != "" {
			t.Errorf("row %+v", q)
		}
	}
	// A response after the timeout is a row of its own.
	tr.Packet(500, "udp", server, client, answerA(t, 5, "a.", "1.2.3.4"))
	if last := c.rows[len(c.rows)-1]; !last.Responded || last.TS != 500 || last.Name != "a" {
		t.Errorf("late response row = %+v", last)
	}
	if tr.Pending() != 0 {
		t.Errorf("pending = %d", tr.Pending())
	}
}

func rowNames(rows []Query) []string {
	var out []string
	for _, q := range rows {
		out = append(out, q.Name)
	}
	return out
}

func TestTrackerRetransmission(t *testing.T) {
	var c collector
	tr := NewTracker(1e9, c.emit)
	tr.Packet(100, "udp", client, server, query(t, 7, "r.example.", dnsmessage.TypeA))
	tr.Packet(200, "udp", client, server, query(t, 7, "r.example.", dnsmessage.TypeA))
	if len(c.rows) != 1 || c.rows[0].TS != 100 || c.rows[0].Responded {
		t.Fatalf("first copy not closed: %+v", c.rows)
	}
	tr.Packet(250, "udp", server, client, answerA(t, 7, "r.example.", "1.2.3.4"))
	if len(c.rows) != 2 || c.rows[1].TS != 200 || c.rows[1].LatencyNS != 50 {
		t.Errorf("response paired with %+v", c.rows[1:])
	}
	if st := tr.Stats(); st.Unanswered != 1 || st.Paired != 1 || st.Queries != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestTrackerMulticast(t *testing.T) {
	var c collector
	tr := NewTracker(1e9, c.emit)
	group := Endpoint{netip.MustParseAddr("224.0.0.252"), 5355}
	responder := Endpoint{netip.MustParseAddr("192.0.2.7"), 5355}
	tr.Packet(100, "udp", client, group, query(t, 0xa706, "wpad.", dnsmessage.TypeA))
	tr.Packet(180, "udp", responder, client, answerA(t, 0xa706, "wpad.", "192.0.2.7"))
	if len(c.rows) != 1 || c.rows[0].Server != responder || c.rows[0].LatencyNS != 80 || !c.rows[0].Responded {
		t.Errorf("rows = %+v", c.rows)
	}
}

func TestTrackerMalformed(t *testing.T) {
	var c collector
	tr := NewTracker(1e9, c.emit)
	tr.Packet(1, "udp", client, server, []byte{1, 2, 3})
	q := query(t, 4, "x.example.", dnsmessage.TypeA)
	tr.Packet(2, "udp", client, server, q[:len(q)-3])
	// A query, then its response cut inside the answer: paired, with Error.
	tr.Packet(3, "udp", client, server, q)
	resp := answerA(t, 4, "x.example.", "1.2.3.4")
	tr.Packet(4, "udp", server, client, resp[:len(resp)-1])
	if len(c.rows) != 3 {
		t.Fatalf("rows = %+v", c.rows)
	}
	for i, r := range c.rows {
		if !strings.HasPrefix(r.Error, "dns: ") {
			t.Errorf("row %d error = %q", i, r.Error)
		}
	}
	if r := c.rows[1]; r.ID != 4 || r.Responded || r.Client != client {
		t.Errorf("malformed query row = %+v", r)
	}
	if r := c.rows[2]; !r.Responded || r.LatencyNS != 1 || r.Name != "x.example" || r.TS != 3 {
		t.Errorf("malformed response row = %+v", r)
	}
	if st := tr.Stats(); st.Malformed != 3 || st.Queries != 2 || st.Responses != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestTrackerPendingBound(t *testing.T) {
	n := 0
	tr := NewTracker(1<<62, func(*Query) { n++ })
	q := query(t, 0, "a.", dnsmessage.TypeA)
	for i := 0; i < maxPending+10; i++ {
		q[0], q[1] = byte(i>>8), byte(i)
		tr.Packet(int64(i), "udp", Endpoint{client.IP, uint16(i >> 16)}, server, q)
	}
	if tr.Pending() != maxPending || n != 10 {
		t.Errorf("pending %d, emitted %d", tr.Pending(), n)
	}
}

// tcpFrame prefixes m with its 2-byte length.
func tcpFrame(m []byte) []byte {
	return append([]byte{byte(len(m) >> 8), byte(len(m))}, m...)
}

func TestStreamSplitsEverywhere(t *testing.T) {
	q1 := tcpFrame(query(t, 1, "one.example.", dnsmessage.TypeA))
	q2 := tcpFrame(query(t, 2, "two.example.", dnsmessage.TypeAAAA))
	r1 := tcpFrame(answerA(t, 1, "one.example.", "10.0.0.1"))
	r2 := tcpFrame(msg(t, dnsmessage.Header{ID: 2, Response: true, RCode: dnsmessage.RCodeNameError}, "two.example.", dnsmessage.TypeAAAA, nil))
	c2s := append(slices.Clone(q1), q2...)
	s2c := append(slices.Clone(r1), r2...)
	for cut := 0; cut <= len(c2s); cut++ {
		var c collector
		tr := NewTracker(1e9, c.emit)
		s := NewStream(tr, client, server)
		s.Data(tcp.ClientToServer, 10, c2s[:cut])
		s.Data(tcp.ClientToServer, 11, c2s[cut:])
		// Server bytes one at a time.
		for i := range s2c {
			s.Data(tcp.ServerToClient, 20, s2c[i:i+1])
		}
		s.Close(30)
		tr.Flush()
		if len(c.rows) != 2 {
			t.Fatalf("cut %d: rows %+v", cut, c.rows)
		}
		if r := c.rows[0]; r.Name != "one.example" || r.Answers[0] != "A 10.0.0.1" || r.Transport != "tcp" || r.Client != client {
			t.Errorf("cut %d: row 0 %+v", cut, r)
		}
		if r := c.rows[1]; r.Name != "two.example" || r.RCode != "NXDOMAIN" || r.QType != "AAAA" {
			t.Errorf("cut %d: row 1 %+v", cut, r)
		}
		wantTS := int64(11)
		if cut == len(c2s) {
			wantTS = 10
		}
		if c.rows[1].TS != wantTS {
			t.Errorf("cut %d: second query TS %d, want %d", cut, c.rows[1].TS, wantTS)
		}
	}
}

func TestStreamGapResync(t *testing.T) {
	q1 := tcpFrame(query(t, 1, "lost.example.", dnsmessage.TypeA))
	q2 := tcpFrame(query(t, 2, "kept.example.", dnsmessage.TypeA))
	var c collector
	tr := NewTracker(1e9, c.emit)
	s := NewStream(tr, client, server)
	s.Data(tcp.ClientToServer, 1, q1[:9])
	s.Gap(tcp.ClientToServer, 2, 4)
	// The rest of q1 arrives after the gap, then q2, split: the stream
	// must skip q1's tail and find q2.
	rest := append(slices.Clone(q1[13:]), q2...)
	s.Data(tcp.ClientToServer, 3, rest[:len(rest)-5])
	s.Data(tcp.ClientToServer, 4, rest[len(rest)-5:])
	tr.Flush()
	if len(c.rows) != 2 {
		t.Fatalf("rows = %+v", c.rows)
	}
	if r := c.rows[0]; !strings.Contains(r.Error, "gap of 4 bytes") || r.Transport != "tcp" {
		t.Errorf("gap row = %+v", r)
	}
	if r := c.rows[1]; r.Name != "kept.example" || r.Error != "" || r.TS != 4 {
		t.Errorf("resynced row = %+v", r)
	}
}

func TestStreamMalformedResync(t *testing.T) {
	// A framed message that does not decode, then a good one.
	bad := tcpFrame([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	good := tcpFrame(query(t, 3, "ok.example.", dnsmessage.TypeTXT))
	var c collector
	tr := NewTracker(1e9, c.emit)
	s := NewStream(tr, client, server)
	s.Data(tcp.ClientToServer, 1, append(bad, good...))
	tr.Flush()
	if len(c.rows) != 2 || c.rows[0].Error == "" || c.rows[1].Name != "ok.example" || c.rows[1].QType != "TXT" {
		t.Errorf("rows = %+v", c.rows)
	}
}

func TestStreamCloseInsideMessage(t *testing.T) {
	q := tcpFrame(query(t, 1, "cut.example.", dnsmessage.TypeA))
	var c collector
	tr := NewTracker(1e9, c.emit)
	s := NewStream(tr, client, server)
	s.Data(tcp.ClientToServer, 1, q[:len(q)-1])
	s.Close(2)
	if len(c.rows) != 1 || !strings.Contains(c.rows[0].Error, "closed inside a message") || c.rows[0].TS != 2 {
		t.Errorf("rows = %+v", c.rows)
	}
	// Garbage that never looks like DNS produces one row per gap, not per
	// byte, and bounded memory.
	c.rows = nil
	s = NewStream(tr, client, server)
	s.Gap(tcp.ServerToClient, 3, 100)
	junk := []byte(strings.Repeat("HTTP/1.1 200 OK\r\n", 20000))
	s.Data(tcp.ServerToClient, 4, junk)
	if h := &s.dirs[tcp.ServerToClient]; len(c.rows) != 1 || len(h.live()) > 2+65535 || cap(h.buf) > maxRetained {
		t.Errorf("rows %d, live %d, capacity %d", len(c.rows), len(h.live()), cap(h.buf))
	}
}

func TestLooks(t *testing.T) {
	q := query(t, 0x1234, "www.example.com.", dnsmessage.TypeA)
	r := answerA(t, 0x1234, "www.example.com.", "1.2.3.4")
	nbns := []byte{0x80, 0x01, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 32}
	nbns = append(nbns, []byte("EBEBEBEBEBEBEBEBEBEBEBEBEBEBEBAA")...)
	nbns = append(nbns, 0, 0, 0x20, 0, 1)
	cases := []struct {
		name string
		b    []byte
		want bool
	}{
		{"query", q, true},
		{"response", r, true},
		{"empty", nil, false},
		{"truncated", q[:len(q)-1], false},
		{"two questions", append(slices.Clone(q[:5]), append([]byte{2}, q[6:]...)...), false},
		{"query with answers", append(slices.Clone(q[:7]), append([]byte{1}, q[8:]...)...), false},
		{"Z bit", append(slices.Clone(q[:3]), append([]byte{q[3] | 0x40}, q[4:]...)...), false},
		{"opcode 3", append(slices.Clone(q[:2]), append([]byte{3 << 3}, q[3:]...)...), false},
		{"nbns", nbns, false},
		{"http", []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), false},
		{"tls", []byte{0x16, 3, 1, 0, 0x40, 1, 0, 0, 0x3c, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false},
	}
	for _, c := range cases {
		if got := Looks(c.b); got != c.want {
			t.Errorf("%s: Looks = %v, want %v", c.name, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Looks(q) }); n != 0 {
		t.Errorf("Looks allocates %v times", n)
	}
}

func TestTrackerAllocations(t *testing.T) {
	q := query(t, 1, "alloc.example.", dnsmessage.TypeA)
	r := answerA(t, 1, "alloc.example.", "1.2.3.4")
	tr := NewTracker(1e9, func(*Query) {})
	n := testing.AllocsPerRun(1000, func() {
		tr.Packet(1, "udp", client, server, q)
		tr.Packet(2, "udp", server, client, r)
	})
	// The question name of each message and the answer string; nothing
	// per pending query (recycled) or per row.
	if n > 3 {
		t.Errorf("%v allocations per query/response pair", n)
	}
}

func TestTrackerSameIDDifferentNames(t *testing.T) {
	var c collector
	tr := NewTracker(1e9, c.emit)
	tr.Packet(1, "udp", client, server, query(t, 9, "a.example.", dnsmessage.TypeA))
	tr.Packet(2, "udp", client, server, query(t, 9, "b.example.", dnsmessage.TypeA))
	tr.Packet(3, "udp", client, server, query(t, 9, "c.example.", dnsmessage.TypeA))
	// Answer the middle one, then the last: the chain of queries sharing
	// client and ID must stay intact.
	tr.Packet(4, "udp", server, client, answerA(t, 9, "b.example.", "10.0.0.2"))
	tr.Packet(5, "udp", server, client, answerA(t, 9, "c.example.", "10.0.0.3"))
	tr.Flush()
	if got := rowNames(c.rows); !slices.Equal(got, []string{"b.example", "c.example", "a.example"}) {
		t.Fatalf("rows %q", got)
	}
	if c.rows[0].LatencyNS != 2 || c.rows[1].LatencyNS != 2 || c.rows[2].Responded {
		t.Errorf("rows %+v", c.rows)
	}
}
