package tlskeys

import (
	"errors"
	"log/slog"
	"time"
)

// Errors of Open.
var (
	// ErrPermission: loading eBPF programs and attaching uprobes needs root
	// (or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE).
	ErrPermission = errors.New("not permitted: eBPF TLS key capture needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE)")
	// ErrNoBPF: the kernel (or the OS) cannot run the programs.
	ErrNoBPF = errors.New("eBPF uprobes are not available")
)

// DefaultRescan is how often the collector looks for libssl files that
// processes loaded since the last look.
const DefaultRescan = 10 * time.Second

// Config configures a Collector.
type Config struct {
	// Libraries are the libssl files (or programs with OpenSSL linked in)
	// to attach to. Empty: the system's libssl files and those mapped by
	// running processes, looked for again every Rescan.
	Libraries []string
	// PID, if set, limits the capture to one process.
	PID int
	// Cgroup, if set, limits the capture to the processes of a cgroup v2
	// directory and of the cgroups below it.
	Cgroup string
	// HandshakeOnly leaves out the hooks on SSL_read, SSL_write and their
	// _ex variants: a uprobe per call is the collector's main cost on
	// connections that carry many small messages. The secrets of programs
	// whose handshakes run inside those calls (no SSL_do_handshake,
	// SSL_connect or SSL_accept) then come only at SSL_shutdown or SSL_free.
	HandshakeOnly bool
	// Rescan is the interval of the library rescans (0: DefaultRescan;
	// negative: none).
	Rescan time.Duration
	// ProcRoot is where procfs is mounted ("" : /proc).
	ProcRoot string
	Log      *slog.Logger
}

func (cfg *Config) defaults() {
	if cfg.Rescan == 0 {
		cfg.Rescan = DefaultRescan
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
}

// Stats are a collector's counters since Open.
type Stats struct {
	Libraries   int   // libssl files attached
	Connections int64 // connections whose secrets the programs sent
	Lines       int64 // key log lines emitted
	Duplicates  int64 // lines dropped because they were emitted already (the other end of a local connection)
	Lost        int64 // connections lost because the ring buffer was full
	Faults      int64 // reads of process memory that failed
	NotReady    int64 // successful calls whose connection had no secrets yet
	Bad         int64 // events that could not be turned into lines
}

// filter is what the programs are limited to.
type filter struct {
	tgid   uint32
	cgroup uint64
}

// Dedup remembers which key log lines (a label of a connection) were seen,
// up to a bound: the oldest are forgotten first.
type Dedup struct {
	max  int
	set  map[string]struct{}
	ring []string
	next int
}

// NewDedup returns a Dedup that remembers up to max lines.
func NewDedup(max int) *Dedup { return &Dedup{max: max, set: map[string]struct{}{}} }

// First reports whether s was not seen before, and remembers it.
func (d *Dedup) First(s Secret) bool { return d.add(s.Key()) }

func (d *Dedup) add(k string) bool {
	if _, ok := d.set[k]; ok {
		return false
	}
	if len(d.ring) < d.max {
		d.ring = append(d.ring, k)
	} else {
		delete(d.set, d.ring[d.next])
		d.ring[d.next] = k
		d.next = (d.next + 1) % d.max
	}
	d.set[k] = struct{}{}
	return true
}
