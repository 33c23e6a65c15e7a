//go:build linux

package source

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowlake/flowlake/internal/agent/agenttest"
)

// liveCapture runs an AF_PACKET source in the background; stop ends it and
// returns what it captured.
type liveCapture struct {
	src  *AFPacket
	c    collector
	hold chan struct{} // if not nil, emit waits on it before the first packet
	once sync.Once
	done chan error
	stop context.CancelFunc
}

func startCapture(t *testing.T, cfg AFPacketConfig, hold chan struct{}) *liveCapture {
	t.Helper()
	src, err := OpenAFPacket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &liveCapture{src: src, hold: hold, done: make(chan error, 1), stop: cancel}
	go func() {
		c.done <- src.Run(ctx, func(k int, p *Packet) error {
			if c.hold != nil {
				c.once.Do(func() { <-c.hold })
			}
			return c.c.emit(k, p)
		})
	}()
	t.Cleanup(func() { cancel(); src.Close() })
	return c
}

func (c *liveCapture) finish(t *testing.T) []rec {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // longer than a ring block's timeout
	c.stop()
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the source did not stop")
	}
	return c.c.recs
}

// multiset counts packets by their bytes.
func multiset(recs []rec) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[string(r.data)]++
	}
	return m
}

func sameMultiset(t *testing.T, what string, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d packets, tcpdump %d", what, len(got), len(want))
	}
	g, w := multiset(got), multiset(want)
	diff := 0
	for k, n := range w {
		if g[k] != n {
			diff++
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			diff++
		}
	}
	if diff > 0 {
		t.Errorf("%s: %d distinct packets differ from tcpdump's capture", what, diff)
	}
}

// On a veth pair with K=4: every packet tcpdump sees, once; each TCP
// connection, both directions, in one stream; filtered packets counted
// exactly; kernel drops counted exactly; on loopback each packet once.
func TestAFPacketVeth(t *testing.T) {
	n := agenttest.NewNet(t)
	agenttest.RequireTools(t, "tcpdump", "wrk", "curl")
	n.Nginx(t)
	dir := t.TempDir()

	t.Run("fanout", func(t *testing.T) {
		td := n.Tcpdump(t, n.Srv, n.SrvIf, filepath.Join(dir, "fanout.pcap"))
		c := startCapture(t, AFPacketConfig{Interface: n.SrvIf, Streams: 4, Netns: n.Srv}, nil)
		// Many short connections and a few long ones.
		n.Wrk(t, 2*time.Second, 8, "/small", "-H", "Connection: close")
		n.Curl(t, "-o", "/dev/null", "/blob.bin", "-o", "/dev/null", "/page.html")
		got := c.finish(t)
		ts := td.Stop(t)
		want := readAll(t, td.Path)
		if ts.Dropped != 0 {
			t.Skipf("tcpdump dropped %d packets: no reference", ts.Dropped)
		}
		st := c.src.Stats()
		var recv int64
		for k, s := range st.Streams {
			recv += s.Received
			if s.Dropped != 0 {
				t.Errorf("stream %d: %d dropped", k, s.Dropped)
			}
		}
		if recv != int64(len(got)) {
			t.Errorf("the kernel put %d packets in the rings, the source gave %d", recv, len(got))
		}
		sameMultiset(t, "fanout capture", got, want)
		if used := checkFlowsInOneStream(t, got); used != 4 {
			t.Errorf("%d of 4 streams used", used)
		}
		if len(got) < 1000 {
			t.Errorf("only %d packets", len(got))
		}
	})

	t.Run("filter", func(t *testing.T) {
		td := n.Tcpdump(t, n.Srv, n.SrvIf, filepath.Join(dir, "kept.pcap"), "tcp port 80")
		rest := n.Tcpdump(t, n.Srv, n.SrvIf, filepath.Join(dir, "rest.pcap"), "not (tcp port 80)")
		c := startCapture(t, AFPacketConfig{Interface: n.SrvIf, Streams: 2, Netns: n.Srv, Filter: "tcp port 80"}, nil)
		n.Curl(t, "-o", "/dev/null", "/small", "-o", "/dev/null", "/page.html")
		// UDP to a closed port: rejected by the filter, as are the ICMP errors.
		n.Run(t, n.Cli, "bash", "-c", "for i in $(seq 25); do echo x >/dev/udp/"+agenttest.SrvAddr+"/9999; done")
		got := c.finish(t)
		td.Stop(t)
		rest.Stop(t)
		kept, rejected := readAll(t, td.Path), readAll(t, rest.Path)
		sameMultiset(t, "filtered capture", got, kept)
		st := c.src.Stats()
		if !st.FilteredKnown || st.Filtered != int64(len(rejected)) || len(rejected) < 25 {
			t.Errorf("filtered %d (known %v); tcpdump saw %d packets the filter rejects", st.Filtered, st.FilteredKnown, len(rejected))
		}
	})

	t.Run("drops", func(t *testing.T) {
		td := n.Tcpdump(t, n.Srv, n.SrvIf, filepath.Join(dir, "drops.pcap"))
		hold := make(chan struct{})
		// The smallest ring, and a reader stalled while the traffic runs.
		c := startCapture(t, AFPacketConfig{Interface: n.SrvIf, Streams: 1, Netns: n.Srv, RingBytes: 1}, hold)
		// 5 MiB at 20 MB/s: more than the ring holds, less than tcpdump
		// can write.
		n.Curl(t, "--limit-rate", "20M", "-o", "/dev/null", "/blob.bin?[1-40]")
		close(hold)
		got := c.finish(t)
		ts := td.Stop(t)
		if ts.Dropped != 0 {
			t.Skipf("tcpdump dropped %d packets: no reference", ts.Dropped)
		}
		want := readAll(t, td.Path)
		st := c.src.Stats().Streams[0]
		if st.Dropped == 0 {
			t.Fatalf("no drops with a stalled reader (%d packets captured, tcpdump %d)", len(got), len(want))
		}
		if int64(len(got))+st.Dropped != int64(len(want)) {
			t.Errorf("captured %d + dropped %d != %d packets on the wire", len(got), st.Dropped, len(want))
		}
		t.Logf("captured %d, dropped %d, ring freezes %d", len(got), st.Dropped, st.QueueFreezes)
	})

	t.Run("loopback", func(t *testing.T) {
		td := n.Tcpdump(t, n.Srv, "lo", filepath.Join(dir, "lo.pcap"))
		c := startCapture(t, AFPacketConfig{Interface: "lo", Streams: 2, Netns: n.Srv}, nil)
		// A refused connection: SYN and RST, each seen twice by a raw socket.
		n.Command(n.Srv, "curl", "-s", "--max-time", "2", "http://127.0.0.1:1/").Run()
		n.Command(n.Srv, "curl", "-s", "--max-time", "2", "http://127.0.0.1:2/").Run()
		got := c.finish(t)
		td.Stop(t)
		want := readAll(t, td.Path)
		if len(want) != 4 {
			t.Errorf("tcpdump saw %d packets on lo, want 4", len(want))
		}
		sameMultiset(t, "loopback capture", got, want)
	})
}

func TestAFPacketErrors(t *testing.T) {
	agenttest.RequireRoot(t)
	_, err := OpenAFPacket(AFPacketConfig{Interface: "nosuch0", Streams: 1})
	if !errors.Is(err, ErrNoInterface) || !strings.Contains(err.Error(), "lo") {
		t.Errorf("missing interface: %v", err)
	}
	_, err = OpenAFPacket(AFPacketConfig{Interface: "lo", Streams: 1, Filter: "port port"})
	if !errors.Is(err, ErrBadFilter) {
		t.Errorf("bad filter: %v", err)
	}
	_, err = OpenAFPacket(AFPacketConfig{Interface: "lo", Streams: 1, Netns: "flowlake-no-such-netns"})
	if err == nil {
		t.Error("missing namespace accepted")
	}
	// Without CAP_NET_RAW (dropped on one thread, which then ends).
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with its capabilities
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_RAW
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		_, err := OpenAFPacket(AFPacketConfig{Interface: "lo", Streams: 1})
		done <- err
	}()
	err = <-done
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "CAP_NET_RAW") {
		t.Errorf("without CAP_NET_RAW: %v", err)
	}
}
