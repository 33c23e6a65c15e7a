//go:build !libpcap

package source

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// compileTimeout bounds one run of tcpdump.
const compileTimeout = 20 * time.Second

// FilterCompiler names how filters are compiled in this build.
const FilterCompiler = "tcpdump -ddd"

// compileProgram compiles expr with `tcpdump -ddd` against an empty capture
// file of link type link (see Filter).
func compileProgram(expr string, link layers.LinkType) ([]bpf.RawInstruction, error) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, fmt.Errorf("compile filter %q: tcpdump is not installed (flowlake compiles filters with it; install tcpdump, or build flowlake with -tags libpcap): %w", expr, ErrUnsupported)
	}
	dir, err := os.MkdirTemp("", "flowlake-filter-")
	if err != nil {
		return nil, fmt.Errorf("compile filter: %w", err)
	}
	defer os.RemoveAll(dir)
	empty := filepath.Join(dir, "empty.pcap")
	if err := os.WriteFile(empty, pcapHeader(link), 0o600); err != nil {
		return nil, fmt.Errorf("compile filter: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), compileTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tcpdump, "-ddd", "-n", "-r", empty, expr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := tcpdumpError(stderr.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return nil, fmt.Errorf("%w %q: %s", ErrBadFilter, expr, msg)
		}
		return nil, fmt.Errorf("compile filter %q with %s: %w (%s)", expr, tcpdump, err, msg)
	}
	prog, err := parseDDD(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("compile filter %q: unexpected output of tcpdump -ddd: %w", expr, err)
	}
	return prog, nil
}

// tcpdumpError returns tcpdump's error lines without the "reading from
// file" notice and the program name.
func tcpdumpError(stderr string) string {
	var msgs []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "reading from file") {
			continue
		}
		msgs = append(msgs, strings.TrimPrefix(l, "tcpdump: "))
	}
	return strings.Join(msgs, "; ")
}

// pcapHeader returns the global header of an empty classic pcap file of
// link type link and snap length Snaplen.
func pcapHeader(link layers.LinkType) []byte {
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], Snaplen)
	binary.LittleEndian.PutUint32(h[20:], uint32(link))
	return h
}
