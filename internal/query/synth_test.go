package query

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/schema"
)

// synthSpec describes a synthetic lake: HTTP exchanges between clients and
// services over keep-alive TCP connections, TLS-only connections, DNS
// queries, agent status reports and parse status rows, written through the
// real lake writer (engine.LakeSink → lake.Writer, which also writes the
// edges_1m rollup) one writer per hour, as compaction leaves a lake.
type synthSpec struct {
	Start    time.Time
	Hours    int
	HTTPRows int // total
	Agents   int
	Clients  int
	Servers  int
	Seed     uint64
	// Bodies adds header and body text of realistic sizes.
	Bodies bool
}

var synthMethods = []string{"GET", "GET", "GET", "GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD", "PATCH"}

var synthResources = []string{"users", "orders", "items", "carts", "payments", "sessions", "search", "inventory",
	"prices", "reviews", "shipments", "accounts", "tokens", "images", "reports", "events"}

func synthStatus(r *rand.Rand) int32 {
	switch x := r.IntN(10000); {
	case x < 8600:
		return 200
	case x < 8900:
		return 201
	case x < 9100:
		return 204
	case x < 9250:
		return 304
	case x < 9400:
		return 400
	case x < 9750:
		return 404
	case x < 9860:
		return 500
	case x < 9930:
		return 503
	case x < 9980:
		return 502
	default:
		return 0
	}
}

// synthLake writes the lake of spec through st's sink.
func synthLake(ctx context.Context, sink lake.Sink, spec synthSpec) error {
	r := rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x9e3779b97f4a7c15))
	agents := make([]string, spec.Agents)
	for i := range agents {
		agents[i] = fmt.Sprintf("agent-%c", 'a'+i)
	}
	type server struct {
		ip, name, host string
		port           int32
		tls            bool
		medianUS       float64
	}
	servers := make([]server, spec.Servers)
	for i := range servers {
		port, tls := int32(8080), false
		if i%3 == 0 {
			port, tls = 443, true
		}
		servers[i] = server{
			ip:       fmt.Sprintf("10.2.%d.%d", i/250, i%250+1),
			name:     fmt.Sprintf("svc-%02d.internal", i),
			host:     fmt.Sprintf("svc-%02d.example", i),
			port:     port,
			tls:      tls,
			medianUS: 400 * math.Pow(1.25, float64(i%20)),
		}
	}
	type client struct {
		ip, name, agent string
		servers         []int
	}
	clients := make([]client, spec.Clients)
	for i := range clients {
		c := client{ip: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), agent: agents[i%len(agents)]}
		if i%4 != 0 {
			c.name = fmt.Sprintf("web-%03d.internal", i)
		}
		for range 1 + r.IntN(6) {
			c.servers = append(c.servers, int(math.Min(float64(spec.Servers-1), r.ExpFloat64()*float64(spec.Servers)/4)))
		}
		clients[i] = c
	}

	perHour := spec.HTTPRows / spec.Hours
	var tcpSeq, dnsSeq int
	for h := range spec.Hours {
		hour := spec.Start.Add(time.Duration(h) * time.Hour)
		w := lake.NewWriter(sink, lake.Options{Name: fmt.Sprintf("synth-%04d", h)})
		s := engine.LakeSink{W: w}
		h0 := hour.UnixMicro()
		// Exchanges in connections of ~20 exchanges each.
		n := perHour
		if h == spec.Hours-1 {
			n = spec.HTTPRows - perHour*(spec.Hours-1)
		}
		for n > 0 {
			ci := r.IntN(len(clients))
			c := &clients[ci]
			si := c.servers[r.IntN(len(c.servers))]
			sv := &servers[si]
			k := min(n, 1+r.IntN(40))
			n -= k
			tcpSeq++
			tcpID := fmt.Sprintf("t%012x", tcpSeq)
			port := int32(20000 + r.IntN(40000))
			t := h0 + r.Int64N(3600*1_000_000-int64(k)*50_000)
			connStart := t
			var connBytes int64
			for x := range k {
				d := int64(sv.medianUS * math.Exp(r.NormFloat64()*0.8))
				status := synthStatus(r)
				method := synthMethods[r.IntN(len(synthMethods))]
				res := synthResources[r.IntN(len(synthResources))]
				path := fmt.Sprintf("/api/v%d/%s/%d", 1+r.IntN(2), res, r.IntN(5000))
				query := ""
				if r.IntN(4) == 0 {
					query = fmt.Sprintf("page=%d&limit=50", r.IntN(20))
				}
				uri := path
				if query != "" {
					uri += "?" + query
				}
				var reqBytes, respBytes int64
				if method == "POST" || method == "PUT" || method == "PATCH" {
					reqBytes = 50 + r.Int64N(2000)
				}
				if status != 204 && status != 304 && status != 0 && method != "HEAD" {
					respBytes = 100 + r.Int64N(20000)
				}
				parseErr := ""
				if r.IntN(5000) == 0 {
					parseErr = "malformed response: bad chunk size"
				}
				ua := []string{"curl/8.5.0", "Go-http-client/1.1", "okhttp/4.12.0", "python-requests/2.31.0"}[ci%4]
				row := schema.HTTP{
					ID:            fmt.Sprintf("h%012x%04x", tcpSeq, x),
					TS:            t,
					TSEnd:         t + d,
					DurationUS:    d,
					Agent:         c.agent,
					ClientIP:      c.ip,
					ClientPort:    port,
					ServerIP:      sv.ip,
					ServerPort:    sv.port,
					ClientName:    c.name,
					ServerName:    sv.name,
					TCPID:         tcpID,
					Seq:           int32(x),
					Method:        method,
					URI:           uri,
					Host:          sv.host,
					Path:          path,
					Query:         query,
					Version:       "HTTP/1.1",
					Status:        status,
					Reason:        reason(status),
					ReqBodyBytes:  reqBytes,
					RespBodyBytes: respBytes,
					ContentType:   "application/json",
					UserAgent:     ua,
					TLS:           sv.tls,
					Complete:      r.IntN(1000) != 0,
					Error:         parseErr,
					CommunityID:   "1:" + tcpID,
				}
				if spec.Bodies {
					row.ReqHeaders = fmt.Sprintf("Host: %s\nUser-Agent: %s\nAccept: application/json\nX-Request-Id: %016x\nAuthorization: [redacted]\n", sv.host, ua, r.Uint64())
					row.RespHeaders = fmt.Sprintf("Content-Type: application/json\nContent-Length: %d\nDate: %s\nServer: envoy\n", respBytes, time.UnixMicro(t).UTC().Format(time.RFC1123))
					if reqBytes > 0 {
						row.ReqBody = fmt.Sprintf(`{"id":%d,"resource":%q,"qty":%d}`, r.IntN(1e6), res, r.IntN(10))
					}
					if respBytes > 0 {
						row.RespBody = fmt.Sprintf(`{"id":%d,"name":"%s-%d","tags":["a","b"],"price":%d.%02d,"updated":"%s"}`,
							r.IntN(1e6), res, r.IntN(1e4), r.IntN(500), r.IntN(100), time.UnixMicro(t).UTC().Format(time.RFC3339))
					}
				}
				s.HTTP(&row)
				connBytes += reqBytes + respBytes + 200
				t += d + int64(r.IntN(40_000))
			}
			s.TCP(&schema.TCP{
				ID: tcpID, TS: connStart, TSEnd: t, DurationUS: t - connStart, Agent: c.agent,
				ClientIP: c.ip, ClientPort: port, ServerIP: sv.ip, ServerPort: sv.port, ClientName: c.name, ServerName: sv.name,
				PacketsC2S: int64(3 * k), PacketsS2C: int64(4 * k), BytesC2S: connBytes / 4, BytesS2C: connBytes * 3 / 4,
				Close: schema.CloseFIN, SawSYN: true, AppProtocol: schema.ProtoHTTP, HTTPExchanges: int32(k), CommunityID: "1:" + tcpID,
				Segments: []string{fmt.Sprintf("raw/agent=%s/stream=0/%s/%020d.pcapng.zst", c.agent, hour.Format("2006/01/02/15"), tcpSeq%720)},
			})
		}
		// TLS-only connections (encrypted, not decrypted) and DNS queries.
		for range perHour / 50 {
			c := &clients[r.IntN(len(clients))]
			sv := &servers[c.servers[r.IntN(len(c.servers))]]
			tcpSeq++
			t := h0 + r.Int64N(3600*1_000_000-2_000_000)
			d := int64(r.IntN(2_000_000))
			closeReason := schema.CloseFIN
			if r.IntN(20) == 0 {
				closeReason = schema.CloseRST
			}
			s.TCP(&schema.TCP{
				ID: fmt.Sprintf("t%012x", tcpSeq), TS: t, TSEnd: t + d, DurationUS: d, Agent: c.agent,
				ClientIP: c.ip, ClientPort: int32(20000 + r.IntN(40000)), ServerIP: sv.ip, ServerPort: 443,
				ClientName: c.name, ServerName: sv.name, PacketsC2S: 10, PacketsS2C: 12, BytesC2S: 2000, BytesS2C: 9000,
				Close: closeReason, SawSYN: true, AppProtocol: schema.ProtoTLS,
			})
			dnsSeq++
			lat := int64(200 + r.IntN(3000))
			rcode, responded := "NOERROR", true
			if r.IntN(30) == 0 {
				rcode = "NXDOMAIN"
			}
			if r.IntN(100) == 0 {
				rcode, responded, lat = "", false, 0
			}
			s.DNS(&schema.DNS{
				ID: fmt.Sprintf("d%012x", dnsSeq), TS: t, Agent: c.agent, Transport: "udp",
				ClientIP: c.ip, ClientPort: int32(30000 + r.IntN(30000)), ServerIP: "10.0.0.53", ServerPort: 53,
				TxID: int32(r.IntN(65536)), Query: sv.name, QType: "A", RCode: rcode, Answers: []string{sv.ip},
				LatencyUS: lat, Responded: responded,
			})
		}
		// Status: every 20 s per agent, two streams; parse status per 10 s segment.
		for ai, a := range agents {
			for sec := 0; sec < 3600; sec += 20 {
				for stream := range 2 {
					dropped := int64(0)
					if (h*3600+sec)%7200 == 1200 && ai == 0 {
						dropped = 40
					}
					total := int64(h*3600+sec) * 100
					w.CaptureStatus.Add(schema.CaptureStatus{
						TS: h0 + int64(sec)*1_000_000, Agent: a, Stream: int32(stream), Interface: "eth0",
						Captured: total, Dropped: dropped, Filtered: total / 10, SegmentsUploaded: int64(h*360 + sec/10),
						BytesUploaded: total * 300,
					})
				}
			}
			for sec := 0; sec < 3600; sec += 10 {
				ts := h0 + int64(sec)*1_000_000
				var missing int64
				if sec == 600 && ai == 1 {
					missing = 1500
				}
				w.ParseStatus.Add(schema.ParseStatus{
					TS: ts, TSEnd: ts + 9_900_000, ParsedAt: ts + 12_000_000, Agent: a, Seq: int64(h*360 + sec/10),
					Input: fmt.Sprintf("raw/agent=%s/stream=0/%020d.pcapng.zst", a, h*360+sec/10), Packets: 1000,
					MissingBytes: missing, Gap: sec == 1800 && ai == 2, Status: "ok",
				})
			}
		}
		if _, err := w.Close(ctx); err != nil {
			return fmt.Errorf("synthetic lake hour %d: %w", h, err)
		}
	}
	return nil
}

func reason(status int32) string {
	switch status {
	case 0:
		return ""
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 204:
		return "No Content"
	case 304:
		return "Not Modified"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 500:
		return "Internal Server Error"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	}
	return strings.Repeat("?", 1)
}
