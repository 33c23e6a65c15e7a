package schema

import (
	"fmt"
	"math"
	"strconv"
)

// TableEdges1m is the per-minute edge rollup table.
const TableEdges1m = "edges_1m"

// Protocols of an edge (Edges1m.Protocol).
const (
	ProtoHTTP = "http"
	ProtoTLS  = "tls"
	ProtoTCP  = "tcp"
	ProtoDNS  = "dns"
)

// LatencyBuckets is the number of latency histogram buckets of a rollup
// row (Edges1m.LatHist).
const LatencyBuckets = 40

// LatencyLower holds the lower bound, in microseconds, of each latency
// bucket: bucket 0 is [0, 100µs), bucket k ≥ 1 is [100·2^((k-1)/2) µs,
// LatencyLower[k+1]), and the last bucket is everything from 52.4 s. Two
// buckets per power of two: an estimate taken inside a bucket is within
// ±19% of any value in it.
var LatencyLower = func() [LatencyBuckets]int64 {
	var b [LatencyBuckets]int64
	for k := 1; k < LatencyBuckets; k++ {
		b[k] = int64(math.Round(100 * math.Pow(2, float64(k-1)/2)))
	}
	return b
}()

// LatencyBucket returns the histogram bucket of a duration in
// microseconds (negative durations count as 0).
func LatencyBucket(us int64) int {
	// The first bucket whose lower bound is above us, minus one.
	lo, hi := 1, LatencyBuckets
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if LatencyLower[m] <= us {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// LatencyQuantile estimates the q-quantile (0 < q ≤ 1, nearest rank) of
// the durations counted in hist, whose largest value is maxUS: it finds
// the bucket holding the value of rank ceil(q·n) and interpolates linearly
// inside it (the last bucket's upper bound is maxUS). It returns 0 for an
// empty histogram.
func LatencyQuantile(hist *[LatencyBuckets]int64, maxUS int64, q float64) int64 {
	var n int64
	for _, c := range hist {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var cum int64
	for k, c := range hist {
		if c == 0 || cum+c < rank {
			cum += c
			continue
		}
		lo := LatencyLower[k]
		hi := maxUS
		if k+1 < LatencyBuckets {
			hi = min(LatencyLower[k+1]-1, maxUS)
		}
		hi = max(hi, lo)
		// Position of the rank inside the bucket, at the middle of its slot.
		f := (float64(rank-cum) - 0.5) / float64(c)
		return lo + int64(math.Round(f*float64(hi-lo)))
	}
	return maxUS
}

// Edges1m is one row of the edges_1m rollup: the traffic in one minute,
// seen by one agent, from one client to one server over one protocol.
// The lake writer derives it from the http, tcp and dns rows it writes
// (lake.Writer.AddHTTP/AddTCP/AddDNS) into files named like theirs, so
// rows of the same key may be split over several files (segments); a
// reader sums them. Counted are HTTP exchanges (protocol http), DNS
// queries (dns) and TCP connections without HTTP exchanges (tls when the
// connection speaks TLS, else tcp; DNS over TCP is left to dns).
type Edges1m struct {
	TS         int64  `parquet:"ts,timestamp(microsecond)"` // start of the minute, UTC
	Agent      string `parquet:"agent,dict"`
	Protocol   string `parquet:"protocol,dict"`
	ClientIP   string `parquet:"client_ip,dict"`
	ServerIP   string `parquet:"server_ip,dict"`
	ServerPort int32  `parquet:"server_port"`
	ClientName string `parquet:"client_name,dict"`
	ServerName string `parquet:"server_name,dict"`
	TLS        bool   `parquet:"tls"`
	Count      int64  `parquet:"count"`
	// Errors counts rows for which HTTPIsError, TCPIsError or DNSIsError
	// holds.
	Errors int64 `parquet:"errors"`
	// Bytes sums body bytes (http), payload bytes both ways (tcp, tls);
	// 0 for dns.
	Bytes int64 `parquet:"bytes"`
	// DurationSumUS and DurationMaxUS sum and bound the durations (http:
	// duration_us, tcp: connection duration_us, dns: latency_us of
	// answered queries); LatHist counts them per LatencyBucket.
	DurationSumUS int64 `parquet:"duration_sum_us"`
	DurationMaxUS int64 `parquet:"duration_max_us"`
	// LatHist is the sparse latency histogram: "k:n,k:n,…" with bucket k
	// (LatencyBucket, ascending) holding n durations (EncodeLatHist).
	LatHist string `parquet:"lat_hist"`
}

// EncodeLatHist returns the sparse text form of a latency histogram (see
// Edges1m.LatHist); "" when it is empty.
func EncodeLatHist(h *[LatencyBuckets]int64) string {
	var b []byte
	for k, n := range h {
		if n == 0 {
			continue
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, n, 10)
	}
	return string(b)
}

// AddLatHist adds the counts of the sparse histogram s (EncodeLatHist) to
// h. It fails on text that is not of that form.
func AddLatHist(h *[LatencyBuckets]int64, s string) error {
	for len(s) > 0 {
		var k, n int64
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && k < LatencyBuckets {
			k = k*10 + int64(s[i]-'0')
			i++
		}
		if i == 0 || i >= len(s) || s[i] != ':' || k >= LatencyBuckets {
			return fmt.Errorf("bad latency histogram %q", s)
		}
		i++
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 1<<58 {
			n = n*10 + int64(s[i]-'0')
			i++
		}
		if i == j || (i < len(s) && s[i] != ',') {
			return fmt.Errorf("bad latency histogram %q", s)
		}
		h[k] += n
		if i < len(s) {
			i++
			if i == len(s) {
				return fmt.Errorf("bad latency histogram %q", s)
			}
		}
		s = s[i:]
	}
	return nil
}

// HTTPIsError reports whether an exchange counts as an error: a 5xx
// status, no response (status 0), or a parse error.
func HTTPIsError(status int32, parseError string) bool {
	return status >= 500 || status == 0 || parseError != ""
}

// TCPIsError reports whether a connection counts as an error: it was reset.
func TCPIsError(close string) bool { return close == CloseRST }

// DNSIsError reports whether a query counts as an error: no answer, or an
// rcode other than NOERROR.
func DNSIsError(responded bool, rcode string) bool { return !responded || rcode != "NOERROR" }

// TCPEdgeProtocol returns the edge protocol a TCP connection counts under,
// or "" when it is not counted as a connection (it carried HTTP exchanges,
// which count themselves, or DNS, counted by the dns table).
func TCPEdgeProtocol(appProtocol string, httpExchanges int32) string {
	switch {
	case httpExchanges > 0 || appProtocol == ProtoDNS:
		return ""
	case TCPIsTLS(appProtocol):
		return ProtoTLS
	}
	return ProtoTCP
}

// TCPIsTLS reports whether a connection's app_protocol is TLS: tls (not
// decrypted), https (HTTP/1.x decrypted) or h2 (HTTP/2 decrypted).
func TCPIsTLS(appProtocol string) bool {
	return appProtocol == ProtoTLS || appProtocol == "https" || appProtocol == "h2"
}

// MinuteOf returns the start of the minute of a time in microseconds.
func MinuteOf(us int64) int64 {
	const m = 60_000_000
	q := us / m
	if us%m != 0 && us < 0 {
		q--
	}
	return q * m
}
