package engine

import (
	"errors"
	"fmt"
	"testing"
)

// parseInPieces runs the engine over frames cut at the given packet
// indices, checkpointing and resuming at every cut, and finishing at the
// end.
func parseInPieces(t testing.TB, frames []frame, cuts []int) *Collector {
	return parseInPiecesCfg(t, Config{Agent: "test"}, frames, cuts, nil)
}

// parseInPiecesCfg is parseInPieces with a configuration; check, if set,
// is given every checkpoint.
func parseInPiecesCfg(t testing.TB, cfg Config, frames []frame, cuts []int, check func([]byte)) *Collector {
	col := &Collector{}
	e := New(cfg, col)
	prev := 0
	for _, cut := range append(cuts, len(frames)) {
		for _, f := range frames[prev:cut] {
			e.Frame(f.link, f.ts, f.data)
		}
		prev = cut
		if cut == len(frames) {
			break
		}
		state, err := e.Checkpoint()
		if err != nil {
			t.Fatalf("checkpoint at %d: %v", cut, err)
		}
		if check != nil {
			check(state)
		}
		if e, err = Resume(cfg, col, state); err != nil {
			t.Fatalf("resume at %d: %v", cut, err)
		}
	}
	e.Finish()
	sortRows(col)
	return col
}

// Checkpointing the engine anywhere in a capture and resuming from the
// checkpoint gives exactly the rows of one pass.
func TestCheckpointResumeGivesSameRows(t *testing.T) {
	for _, name := range []string{"ndpi-1kxun.pcap", "zeek-http-bro.org.pcap", "ppp-DnsPackets.pcap", "ark-dns-tcp.pcap", "ndpi-reddit.pcap",
		"zeek-http-1000-requests-one-dropped-response.pcap", "ndpi-http_ua_splitted_in_two_pkts.pcapng", "zeek-http-100-continue.pcap", "scapy-http_chunk.pcap"} {
		t.Run(name, func(t *testing.T) {
			frames, _ := loadFrames(t, name)
			whole := parseInPieces(t, frames, nil)
			var cutSets [][]int
			// every packet index for small captures, a stride for large ones
			step := max(1, len(frames)/60)
			for k := 1; k < len(frames); k += step {
				cutSets = append(cutSets, []int{k})
			}
			var many []int
			for k := 3; k < len(frames); k += 7 {
				many = append(many, k)
			}
			cutSets = append(cutSets, many)
			for _, cuts := range cutSets {
				got := parseInPieces(t, frames, cuts)
				label := fmt.Sprintf("cut at %v", cuts)
				if len(cuts) > 3 {
					label = fmt.Sprintf("cut every 7 packets (%d cuts)", len(cuts))
				}
				before := t.Failed()
				compareRows(t, label+" http", whole.HTTPRows, got.HTTPRows)
				compareRows(t, label+" tcp", whole.TCPRows, got.TCPRows)
				compareRows(t, label+" dns", whole.DNSRows, got.DNSRows)
				compareRows(t, label+" tls", whole.TLSRows, got.TLSRows)
				if !before && t.Failed() {
					return // one failing cut is enough to look at
				}
			}
		})
	}
}

func TestResumeRejectsBadCheckpoints(t *testing.T) {
	col := &Collector{}
	e := New(Config{Agent: "a"}, col)
	state, err := e.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(Config{Agent: "b"}, col, state); !errors.Is(err, ErrBadCheckpoint) {
		t.Errorf("other agent: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("garbage"), state[:len(state)/2]} {
		if _, err := Resume(Config{Agent: "a"}, col, bad); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
