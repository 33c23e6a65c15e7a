package source

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// AF_PACKET ring geometry.
const (
	// DefaultRingBytes is the default ring size of one stream.
	DefaultRingBytes = 64 << 20
	ringBlockSize    = 1 << 20
	ringFrameSize    = 4096
	// blockTimeout is how long the kernel fills a ring block before
	// handing it over partly filled: the latency of a quiet link.
	blockTimeout = 50 * time.Millisecond
	// pollTimeout is how often a waiting stream checks for the end.
	pollTimeout = 200 * time.Millisecond
	// MaxStreams bounds K (the kernel's PACKET_FANOUT_MAX is 256).
	MaxStreams = 64
	// startWindow is how long after the start packets timestamped before
	// it are skipped.
	startWindow = 2 * time.Second
)

// AFPacketConfig configures an AF_PACKET source.
type AFPacketConfig struct {
	// Interface is the interface to capture on.
	Interface string
	// Streams is K, the number of sockets in the fanout group (>= 1).
	Streams int
	// Filter is a tcpdump filter expression; "" captures everything.
	Filter string
	// RingBytes is the ring size of one stream; 0 means DefaultRingBytes.
	RingBytes int
	// Promiscuous puts the interface in promiscuous mode while capturing,
	// as tcpdump does by default.
	Promiscuous bool
	// Netns, if set, is the network namespace of the interface: a path
	// (/proc/PID/ns/net) or a name under /var/run/netns. The sockets are
	// opened there; the rest of the process stays where it is.
	Netns string
	// Log receives notices; nil discards them.
	Log *slog.Logger
}

// AFPacket captures an interface through K TPACKET_V3 rings joined in one
// PACKET_FANOUT_HASH group. The kernel picks a packet's socket from a
// symmetric hash of its flow (addresses and, except for IP fragments,
// ports), so both directions of a TCP connection reach the same stream.
// The filter is compiled to classic BPF (see Filter) and attached to every
// socket in the kernel.
//
// Counters come from the kernel's PACKET_STATISTICS of each socket (ring
// drops, TPACKET_V3 queue freezes). Packets the filter rejects are not
// counted by the capture sockets, so the source opens one more AF_PACKET
// socket, outside the fanout group, with the negated filter and a tiny
// receive buffer that is never read: the kernel accepts exactly the
// rejected packets on it (1 byte each), drops them at once and counts
// them, which is Stats.Filtered, exact and cheap.
//
// On a loopback interface the kernel shows every packet twice, once going
// out and once coming in: like libpcap, the source keeps the incoming copy
// only, with a test of the packet type prepended to the filter in the
// kernel.
//
// A socket starts receiving when it is bound, before its filter and its
// fanout group are set. The capture starts when every socket is ready:
// packets timestamped before that moment (in the first seconds) are
// skipped, so none of them bypasses the filter or the flow hash.
type AFPacket struct {
	cfg      AFPacketConfig
	log      *slog.Logger
	origin   string
	ifindex  int
	link     layers.LinkType
	filter   *Filter
	tps      []*afpacket.TPacket
	loopback bool
	counter  int   // fd of the socket counting rejects, or -1
	attached int64 // Unix ns when every socket was ready

	closing   chan struct{} // closed by Close: Run stops
	closeOnce sync.Once
	running   sync.WaitGroup // Run's stream loops

	mu       sync.Mutex // guards tps (Close), acc, filtered
	acc      []sockAcc
	filtered int64
}

// sockAcc turns the wrapping uint32 totals gopacket keeps into int64 ones.
type sockAcc struct {
	lastPackets, lastDrops, lastFreezes uint32
	packets, drops, freezes             int64
}

func (s *sockAcc) add(packets, drops, freezes uint32) {
	s.packets += int64(packets - s.lastPackets)
	s.drops += int64(drops - s.lastDrops)
	s.freezes += int64(freezes - s.lastFreezes)
	s.lastPackets, s.lastDrops, s.lastFreezes = packets, drops, freezes
}

// OpenAFPacket opens the sockets. Errors wrap ErrPermission when the
// process lacks CAP_NET_RAW, ErrNoInterface when the interface does not
// exist, ErrBadFilter for a filter that does not compile.
func OpenAFPacket(cfg AFPacketConfig) (*AFPacket, error) {
	if cfg.Interface == "" {
		return nil, errors.New("afpacket: no interface given")
	}
	if cfg.Streams < 1 || cfg.Streams > MaxStreams {
		return nil, fmt.Errorf("afpacket: %d streams: want 1 to %d", cfg.Streams, MaxStreams)
	}
	if cfg.RingBytes <= 0 {
		cfg.RingBytes = DefaultRingBytes
	}
	if cfg.RingBytes < 2*ringBlockSize {
		cfg.RingBytes = 2 * ringBlockSize
	}
	a := &AFPacket{cfg: cfg, log: cfg.Log, origin: "afpacket:" + cfg.Interface, counter: -1, closing: make(chan struct{})}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if err := inNetns(cfg.Netns, a.open); err != nil {
		a.Close()
		return nil, err
	}
	a.acc = make([]sockAcc, len(a.tps))
	return a, nil
}

// open opens every socket; it runs in the capture's network namespace.
func (a *AFPacket) open() error {
	name := a.cfg.Interface
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("capture on %s: %w %q (interfaces here: %s)", name, ErrNoInterface, name, interfaceNames())
	}
	a.ifindex = ifi.Index
	hatype, err := probe(ifi.Index)
	if err != nil {
		return fmt.Errorf("capture on %s: %w", name, err)
	}
	if a.link, err = linkTypeOf(hatype); err != nil {
		return fmt.Errorf("capture on %s: %w", name, err)
	}
	if a.filter, err = CompileFilter(a.cfg.Filter, a.link); err != nil {
		return fmt.Errorf("capture on %s: %w", name, err)
	}
	a.loopback = hatype == arphrdLoopback
	var prog []bpf.RawInstruction
	if a.filter != nil {
		prog = a.filter.Program
		neg, err := a.filter.Negated()
		if err == nil {
			if a.loopback {
				neg = dropOutgoing(neg)
			}
			a.counter, err = countingSocket(ifi.Index, neg)
		}
		if err != nil {
			a.log.Warn("packets rejected by the filter cannot be counted; reporting 0", "iface", name, "err", err)
		}
	}
	if a.loopback {
		prog = dropOutgoing(prog)
	}
	blocks := a.cfg.RingBytes / ringBlockSize
	var fanout uint16
	for k := range a.cfg.Streams {
		tp, err := afpacket.NewTPacket(
			afpacket.OptInterface(name),
			afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
			afpacket.OptFrameSize(ringFrameSize),
			afpacket.OptBlockSize(ringBlockSize),
			afpacket.OptNumBlocks(blocks),
			afpacket.OptBlockTimeout(blockTimeout),
			afpacket.OptPollTimeout(pollTimeout),
			afpacket.OptAddVLANHeader(true),
		)
		if err != nil {
			return fmt.Errorf("capture on %s: stream %d: open TPACKET_V3 ring of %d MiB: %w", name, k, blocks, explain(err))
		}
		a.tps = append(a.tps, tp)
		if prog != nil {
			if err := tp.SetBPF(prog); err != nil {
				return fmt.Errorf("capture on %s: stream %d: attach filter: %w", name, k, err)
			}
		}
		if a.cfg.Streams > 1 {
			if k == 0 {
				fanout, err = joinNewFanout(tp)
			} else {
				err = tp.SetFanout(afpacket.FanoutHash, fanout)
			}
			if err != nil {
				return fmt.Errorf("capture on %s: stream %d: join fanout group %d: %w", name, k, fanout, err)
			}
		}
		if k == 0 && a.cfg.Promiscuous {
			if err := tp.SetPromiscuous(true); err != nil {
				return fmt.Errorf("capture on %s: promiscuous mode: %w", name, explain(err))
			}
		}
	}
	a.attached = time.Now().UnixNano()
	a.log.Info("capturing", "iface", name, "link", a.link.String(), "streams", a.cfg.Streams,
		"ring_mib_per_stream", blocks, "filter", a.cfg.Filter, "fanout_group", fanout, "netns", a.cfg.Netns)
	return nil
}

// joinNewFanout creates a fanout group with a random id for tp. An id that
// another group of this network namespace already uses with other
// settings is refused by the kernel (EINVAL): another one is tried. (One
// with the same settings on the same interface would be joined; the
// chance of that with a random 16-bit id is what it is.)
func joinNewFanout(tp *afpacket.TPacket) (uint16, error) {
	var err error
	for range 8 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		id := binary.LittleEndian.Uint16(b[:])
		if err = tp.SetFanout(afpacket.FanoutHash, id); err == nil {
			return id, nil
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.EBUSY) {
			return 0, err
		}
	}
	return 0, err
}

// probe checks that AF_PACKET sockets can be opened and returns the
// interface's hardware type (ARPHRD_*), which fixes the link type.
func probe(ifindex int) (uint16, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, explain(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		return 0, fmt.Errorf("bind AF_PACKET socket: %w", explain(err))
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, fmt.Errorf("AF_PACKET getsockname: %w", err)
	}
	ll, ok := sa.(*unix.SockaddrLinklayer)
	if !ok {
		return 0, fmt.Errorf("AF_PACKET getsockname gave %T", sa)
	}
	return ll.Hatype, nil
}

// explain wraps the errors that mean a missing capability.
func explain(err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: AF_PACKET capture needs the CAP_NET_RAW capability: run as root, or grant it (setcap cap_net_raw,cap_net_admin=eip /path/to/flowlake; in Kubernetes: securityContext.capabilities.add [NET_RAW, NET_ADMIN]): %v", ErrPermission, err)
	case errors.Is(err, unix.EAFNOSUPPORT):
		return fmt.Errorf("%w: the kernel has no AF_PACKET sockets: %v", ErrUnsupported, err)
	case errors.Is(err, unix.ENOMEM):
		return fmt.Errorf("%w (the kernel could not allocate the ring: try a smaller one, --ring)", err)
	}
	return err
}

// ARPHRD values (linux/if_arp.h) the source supports.
const (
	arphrdEther    = 1
	arphrdPPP      = 512
	arphrdRawIP    = 519
	arphrdTunnel   = 768
	arphrdTunnel6  = 769
	arphrdSit      = 776
	arphrdLoopback = 772
	arphrdNone     = 0xfffe
)

// linkTypeOf maps an interface's hardware type to the link type of the
// frames a SOCK_RAW packet socket reads from it.
func linkTypeOf(hatype uint16) (layers.LinkType, error) {
	switch hatype {
	case arphrdEther, arphrdLoopback:
		return layers.LinkTypeEthernet, nil
	case arphrdNone, arphrdPPP, arphrdRawIP, arphrdTunnel, arphrdTunnel6, arphrdSit:
		return layers.LinkTypeRaw, nil
	}
	return 0, fmt.Errorf("%w: interface hardware type %d (ARPHRD) has no supported link type (Ethernet, loopback and raw-IP interfaces are)", ErrUnsupported, hatype)
}

// countingSocket opens the socket that counts the packets the filter
// rejects (see AFPacket): prog is the negated filter, attached before the
// socket is bound so that it never holds anything else.
func countingSocket(ifindex int, prog []bpf.RawInstruction) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return -1, explain(err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("attach the negated filter: %w", err)
	}
	// The smallest buffer the kernel allows: everything accepted is dropped
	// (and counted) almost at once.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 0); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("SO_RCVBUF: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind: %w", err)
	}
	// Reset the counters.
	if _, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("PACKET_STATISTICS: %w", err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// interfaceNames lists the interfaces of the current network namespace.
func interfaceNames() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "unknown: " + err.Error()
	}
	names := make([]string, len(ifs))
	for i, ifi := range ifs {
		names[i] = ifi.Name
	}
	return strings.Join(names, ", ")
}

// Interface implements Source.
func (a *AFPacket) Interface() string { return a.cfg.Interface }

// Streams implements Source.
func (a *AFPacket) Streams() int { return len(a.acc) }

// LinkType returns the link type of the captured frames.
func (a *AFPacket) LinkType() layers.LinkType { return a.link }

// Run implements Source. When ctx is done each stream goes on reading what
// the kernel captured up to that moment, then returns.
func (a *AFPacket) Run(ctx context.Context, emit Emit) error {
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	a.mu.Lock()
	select {
	case <-a.closing:
		a.mu.Unlock()
		return errors.New("afpacket: source closed")
	default:
	}
	tps := a.tps
	a.running.Add(len(tps))
	a.mu.Unlock()
	go func() {
		select {
		case <-a.closing:
			cancel()
		case <-stop.Done():
		}
	}()
	errs := make([]error, len(tps))
	var wg sync.WaitGroup
	for k, tp := range tps {
		wg.Go(func() {
			defer a.running.Done()
			if errs[k] = a.loop(stop, k, tp, emit); errs[k] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// loop reads stream k until stop is done and the packets captured before
// have been read.
func (a *AFPacket) loop(stop context.Context, k int, tp *afpacket.TPacket, emit Emit) error {
	// Skip what reached the ring before every socket was ready (see
	// AFPacket), during the first seconds only, so that a clock step cannot
	// make the source skip packets for long.
	early := true
	earlyUntil := time.Unix(0, a.attached).Add(startWindow)
	stopAt := int64(-1)
	var p Packet
	for {
		if stopAt < 0 && stop.Err() != nil {
			stopAt = time.Now().UnixNano()
		}
		data, ci, err := tp.ZeroCopyReadPacketData()
		switch {
		case err == nil:
		case errors.Is(err, afpacket.ErrTimeout):
			if stopAt >= 0 {
				return nil
			}
			continue
		case errors.Is(err, syscall.EINTR):
			continue
		default:
			if stopAt >= 0 {
				return nil
			}
			return fmt.Errorf("capture on %s stream %d: %w", a.cfg.Interface, k, err)
		}
		ts := ci.Timestamp.UnixNano()
		if stopAt >= 0 && ts > stopAt {
			return nil
		}
		if early {
			if ts < a.attached && time.Now().Before(earlyUntil) {
				continue
			}
			early = false
		}
		p = Packet{TS: ts, Link: a.link, Data: data, WireLen: ci.Length, Origin: a.origin}
		if err := emit(k, &p); err != nil {
			return err
		}
	}
}

// Stats implements Source.
func (a *AFPacket) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := Stats{Streams: make([]StreamStats, len(a.acc))}
	for k := range a.acc {
		if k < len(a.tps) { // not closed
			if _, v3, err := a.tps[k].SocketStats(); err == nil {
				a.acc[k].add(uint32(v3.Packets()), uint32(v3.Drops()), uint32(v3.QueueFreezes()))
			}
		}
		acc := a.acc[k]
		// tp_packets counts the drops too.
		st.Streams[k] = StreamStats{Received: acc.packets - acc.drops, Dropped: acc.drops, QueueFreezes: acc.freezes}
	}
	if a.filter == nil {
		st.FilteredKnown = true
		return st
	}
	if a.counter >= 0 {
		if s, err := unix.GetsockoptTpacketStats(a.counter, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			// The counters reset on every read; tp_packets includes drops.
			a.filtered += int64(s.Packets)
		}
		st.FilteredKnown = true
	}
	st.Filtered = a.filtered
	return st
}

// Close implements Source. It may be called while Run runs: Run then
// stops, and Close waits for it before releasing the rings.
func (a *AFPacket) Close() error {
	a.closeOnce.Do(func() { close(a.closing) })
	a.running.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, tp := range a.tps {
		tp.Close()
	}
	a.tps = nil
	if a.counter >= 0 {
		unix.Close(a.counter)
		a.counter = -1
	}
	return nil
}
