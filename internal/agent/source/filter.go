package source

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// Snaplen is the capture length the filters are compiled for: whole
// packets, as tcpdump's default.
const Snaplen = 262144

// ErrBadFilter reports a filter expression that does not compile.
var ErrBadFilter = errors.New("bad capture filter")

// Filter is a capture filter in tcpdump (pcap-filter(7)) syntax compiled to
// classic BPF for one link type.
//
// How it is compiled. flowlake is built without cgo, and no maintained
// pure-Go implementation of the pcap-filter language exists: the
// reimplementations found (packetcap/go-pcap's filter package and others)
// cover a subset of the grammar with their own semantics and are no longer
// developed, and the one wrapping libpcap's own compiler as WebAssembly is
// not published on the module proxy. So the expression is compiled by
// libpcap itself, the reference implementation, in one of two ways:
//
//   - default build: by running `tcpdump -ddd -r F EXPR` once at start,
//     where F is an empty capture file of the interface's link type, so
//     that tcpdump neither opens the interface nor needs privileges (this
//     file, filter_tcpdump.go);
//   - `go build -tags libpcap`: by libpcap linked in through
//     gopacket/pcap (cgo; filter_libpcap.go), for hosts without tcpdump.
//
// Either way the program is what tcpdump would use on a capture file of
// that link type. One difference with a live libpcap capture remains:
// libpcap compiles `vlan` for a live Linux socket with the kernel's
// VLAN-tag extension, while the offline program looks for the tag in the
// frame; interfaces whose driver strips VLAN tags (most) do not match it.
type Filter struct {
	// Expr is the expression as given.
	Expr string
	// Link is the link type the program was compiled for.
	Link layers.LinkType
	// Program is the classic BPF program.
	Program []bpf.RawInstruction
	vm      *bpf.VM // nil when the program uses extensions the Go VM lacks
}

// CompileFilter compiles expr for frames of link type link. An empty expr
// gives a nil Filter and no error: everything is captured.
func CompileFilter(expr string, link layers.LinkType) (*Filter, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	prog, err := compileProgram(expr, link)
	if err != nil {
		return nil, err
	}
	if len(prog) == 0 {
		return nil, fmt.Errorf("%w %q: the compiler produced an empty program", ErrBadFilter, expr)
	}
	f := &Filter{Expr: expr, Link: link, Program: prog}
	if insts, ok := bpf.Disassemble(prog); ok {
		if vm, err := bpf.NewVM(insts); err == nil {
			f.vm = vm
		}
	}
	return f, nil
}

// CanMatch reports whether Match works: false when the program uses Linux
// BPF extensions that the user-space VM does not run.
func (f *Filter) CanMatch() bool { return f.vm != nil }

// Match runs the program on a frame in user space and reports whether the
// filter accepts it. It returns true when CanMatch is false.
func (f *Filter) Match(frame []byte) bool {
	if f.vm == nil {
		return true
	}
	n, err := f.vm.Run(frame)
	return err == nil && n > 0
}

// BPF opcode parts used by Negated.
const (
	bpfClassMask = 0x07
	bpfRet       = 0x06
	bpfRvalMask  = 0x18
	bpfK         = 0x00
)

// Negated returns a program that accepts, with a snap length of one byte,
// exactly the packets the filter rejects: attached to a socket that never
// reads, it makes the kernel count the filter's rejects. It fails for a
// program whose return value is computed (ret A), which libpcap does not
// produce for filter expressions.
func (f *Filter) Negated() ([]bpf.RawInstruction, error) {
	out := make([]bpf.RawInstruction, len(f.Program))
	for i, ins := range f.Program {
		if ins.Op&bpfClassMask == bpfRet {
			if ins.Op&bpfRvalMask != bpfK {
				return nil, fmt.Errorf("filter %q: instruction %d returns a computed value; cannot negate", f.Expr, i)
			}
			if ins.K == 0 {
				ins.K = 1
			} else {
				ins.K = 0
			}
		}
		out[i] = ins
	}
	return out, nil
}

// parseDDD parses the output of `tcpdump -ddd`: the instruction count,
// then one "code jt jf k" line of decimal numbers per instruction.
func parseDDD(out string) ([]bpf.RawInstruction, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	if !sc.Scan() {
		return nil, errors.New("no output")
	}
	n, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil || n <= 0 || n > 1<<16 {
		return nil, fmt.Errorf("bad instruction count %q", sc.Text())
	}
	prog := make([]bpf.RawInstruction, 0, n)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("instruction %d: %q: want 4 numbers", len(prog), line)
		}
		var v [4]uint64
		for i, s := range f {
			bits := []int{16, 8, 8, 32}[i]
			if v[i], err = strconv.ParseUint(s, 10, bits); err != nil {
				return nil, fmt.Errorf("instruction %d: %q: %v", len(prog), line, err)
			}
		}
		prog = append(prog, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	if len(prog) != n {
		return nil, fmt.Errorf("%d instructions announced, %d given", n, len(prog))
	}
	return prog, nil
}

// BPF instructions of the loopback prefix.
const (
	opLdbAbs    = 0x30       // BPF_LD|BPF_B|BPF_ABS
	opJeqK      = 0x15       // BPF_JMP|BPF_JEQ|BPF_K
	opRetK      = 0x06       // BPF_RET|BPF_K
	adPktType   = 0xfffff004 // SKF_AD_OFF + SKF_AD_PKTTYPE
	pktOutgoing = 4          // PACKET_OUTGOING
)

// dropOutgoing prepends to prog (nil: accept everything) a test that
// rejects the packets a socket sees going out, which on a loopback
// interface come back in.
func dropOutgoing(prog []bpf.RawInstruction) []bpf.RawInstruction {
	if prog == nil {
		prog = []bpf.RawInstruction{{Op: opRetK, K: Snaplen}}
	}
	return append([]bpf.RawInstruction{
		{Op: opLdbAbs, K: adPktType},
		{Op: opJeqK, Jt: 0, Jf: 1, K: pktOutgoing},
		{Op: opRetK, K: 0},
	}, prog...)
}
