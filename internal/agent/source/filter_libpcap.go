//go:build libpcap

package source

import (
	"fmt"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// FilterCompiler names how filters are compiled in this build.
const FilterCompiler = "libpcap (cgo)"

// compileProgram compiles expr with libpcap's pcap_compile on a dead
// handle of link type link (see Filter).
func compileProgram(expr string, link layers.LinkType) ([]bpf.RawInstruction, error) {
	// pcap_open_dead takes a DLT_ value: they equal the LINKTYPE_ values
	// of capture files except for raw IP (LINKTYPE_RAW 101, DLT_RAW 12).
	dlt := link
	if link == layers.LinkTypeRaw {
		dlt = 12
	}
	insts, err := pcap.CompileBPFFilter(dlt, Snaplen, expr)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadFilter, expr, err)
	}
	prog := make([]bpf.RawInstruction, len(insts))
	for i, in := range insts {
		prog[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return prog, nil
}
