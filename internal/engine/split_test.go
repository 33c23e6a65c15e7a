package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/testcap"
)

// splitGo cuts a capture into files of n packets with pcapgo (the same cut
// editcap -c makes), for machines without editcap.
func splitGo(t *testing.T, src, dir string, n int) []string {
	t.Helper()
	s := capture.Open([]string{src})
	defer s.Close()
	var files []string
	var w *pcapgo.Writer
	var f *os.File
	var p capture.Packet
	for i := 0; ; i++ {
		err := s.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%n == 0 {
			if f != nil {
				f.Close()
			}
			name := filepath.Join(dir, fmt.Sprintf("part-%05d.pcap", i/n))
			f, err = os.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			w = pcapgo.NewWriterNanos(f)
			if err := w.WriteFileHeader(262144, p.Link); err != nil {
				t.Fatal(err)
			}
			files = append(files, name)
		}
		ci := gopacket.CaptureInfo{Timestamp: capture.Time(p.TS), CaptureLength: len(p.Data), Length: p.WireLen}
		if err := w.WritePacket(ci, p.Data); err != nil {
			t.Fatal(err)
		}
	}
	if f != nil {
		f.Close()
	}
	return files
}

// splitEditcap cuts with Wireshark's editcap -c.
func splitEditcap(t *testing.T, src, dir string, n int) []string {
	t.Helper()
	ext := filepath.Ext(src)
	out, err := exec.Command("editcap", "-c", fmt.Sprint(n), src, filepath.Join(dir, "part"+ext)).CombinedOutput()
	if err != nil {
		t.Fatalf("editcap: %v: %s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "part*"))
	sort.Strings(files) // editcap numbers the parts with zero padding
	return files
}

func sortRows(c *Collector) {
	sort.Slice(c.HTTPRows, func(i, j int) bool { return c.HTTPRows[i].ID < c.HTTPRows[j].ID })
	sort.Slice(c.TCPRows, func(i, j int) bool { return c.TCPRows[i].ID < c.TCPRows[j].ID })
	sort.Slice(c.DNSRows, func(i, j int) bool { return c.DNSRows[i].ID < c.DNSRows[j].ID })
	sort.Slice(c.TLSRows, func(i, j int) bool {
		a, b := c.TLSRows[i], c.TLSRows[j]
		return a.TCPID < b.TCPID || a.TCPID == b.TCPID && a.TS < b.TS
	})
}

// Splitting a capture into many files and parsing them as one continuous
// capture gives exactly the rows of the whole capture: flows that span
// files are rebuilt as if the capture had never been cut.
func TestSplitCaptureGivesSameRows(t *testing.T) {
	captures := []string{"ndpi-1kxun.pcap", "zeek-http-bro.org.pcap", "ppp-DnsPackets.pcap", "ndpi-http_ua_splitted_in_two_pkts.pcapng",
		"zeek-http-1000-requests-one-dropped-response.pcap", "ark-dns-tcp.pcap", "ndpi-reddit.pcap",
		"ark-http2-nghttp2.pcap"}
	if !testing.Short() {
		captures = append(captures, "bench-mixed-web-24mb.pcap")
	}
	splitters := map[string]func(*testing.T, string, string, int) []string{"go": splitGo}
	if _, err := exec.LookPath("editcap"); err == nil {
		splitters["editcap"] = splitEditcap
	} else {
		t.Log("editcap not installed: splitting with pcapgo only")
	}
	for _, name := range captures {
		whole := parseCapture(t, name)
		sortRows(whole)
		for sname, split := range splitters {
			for _, n := range []int{7, 500} {
				t.Run(fmt.Sprintf("%s/%s/%d", name, sname, n), func(t *testing.T) {
					files := split(t, testcap.Path(t, name), t.TempDir(), n)
					if len(files) < 2 && n == 7 {
						t.Fatalf("split into %d files", len(files))
					}
					col := &Collector{}
					if _, err := ParseFiles(t.Context(), files, Config{Agent: "test"}, col, col, FilesOptions{}); err != nil {
						t.Fatal(err)
					}
					sortRows(col)
					if len(col.StatusRows) != len(files) {
						t.Errorf("%d parse_status rows for %d files", len(col.StatusRows), len(files))
					}
					compareRows(t, "http", whole.HTTPRows, col.HTTPRows)
					compareRows(t, "tcp", whole.TCPRows, col.TCPRows)
					compareRows(t, "dns", whole.DNSRows, col.DNSRows)
					compareRows(t, "tls", whole.TLSRows, col.TLSRows)
				})
			}
		}
	}
}

func compareRows[T any](t *testing.T, table string, want, got []T) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: %d rows, whole capture %d", table, len(got), len(want))
		return
	}
	for i := range want {
		if !reflect.DeepEqual(want[i], got[i]) {
			t.Errorf("%s row %d differs:\n  whole %+v\n  split %+v", table, i, want[i], got[i])
			return
		}
	}
}
