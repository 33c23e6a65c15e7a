//go:build linux

package tlskeys

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/flowlake/flowlake/bpf"
)

// hooks are the libssl functions the programs attach to (see
// bpf/tlskeys.c): the return of SSL_do_handshake (SSL_connect and
// SSL_accept call it) when the handshake is done; the entry of the read
// and write functions for handshakes done inside them; the entry of
// SSL_shutdown and SSL_free, a late last chance for connections driven
// through other paths (BIO_f_ssl).
var hooks = []struct {
	symbol   string
	kind     hookKind
	required bool
}{
	{"SSL_do_handshake", hookHandshake, true},
	{"SSL_read", hookReadWrite, true},
	{"SSL_write", hookReadWrite, true},
	{"SSL_read_ex", hookReadWrite, false}, // 1.1.1+
	{"SSL_write_ex", hookReadWrite, false},
	{"SSL_shutdown", hookEnd, false},
	{"SSL_free", hookFree, false},
}

type hookKind int

const (
	hookHandshake hookKind = iota // uprobe ssl_enter + uretprobe ssl_exit
	hookReadWrite                 // uprobe ssl_rw
	hookEnd                       // uprobe ssl_end
	hookFree                      // uprobe ssl_free
)

// Collector captures the TLS secrets of the processes that use the
// attached libssl files.
type Collector struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	shared   map[string]*ebpf.Map            // events, calls, sent, stats: one set for all collections
	colls    map[Offsets]*bpf.TLSKeysObjects // one loaded collection per struct layout
	links    []link.Link
	libs     []Library
	attached map[[2]uint64]bool // (dev, inode) of the attached files
	closed   bool
	failed   map[string]string // discovered files that could not be attached, and why (logged once)

	filter filter
	reader *ringbuf.Reader
	seen   *Dedup

	emitted, duplicates, bad atomic.Int64
	closeOnce                sync.Once
}

// Open loads the eBPF programs and attaches them to the configured
// libssl files (or to the ones it finds). It fails with a precise error
// without root or eBPF support, or when no library could be attached.
func Open(cfg Config) (*Collector, error) {
	cfg.defaults()
	c := &Collector{
		cfg: cfg, log: cfg.Log, colls: map[Offsets]*bpf.TLSKeysObjects{},
		attached: map[[2]uint64]bool{}, failed: map[string]string{}, seen: NewDedup(1 << 16),
	}
	if err := c.open(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Collector) open() error {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return fmt.Errorf("tlskeys: %w: the kernel has no BTF (/sys/kernel/btf/vmlinux: %v); it needs CONFIG_DEBUG_INFO_BTF", ErrNoBPF, err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("tlskeys: %w", loadErr(fmt.Errorf("raising RLIMIT_MEMLOCK for the eBPF maps: %w", err)))
	}
	var cgroupID uint64
	if c.cfg.Cgroup != "" {
		id, err := CgroupID(c.cfg.Cgroup)
		if err != nil {
			return fmt.Errorf("tlskeys: %w", err)
		}
		cgroupID = id
	}
	if c.cfg.PID > 0 {
		if _, err := os.Stat(fmt.Sprintf("%s/%d", c.cfg.ProcRoot, c.cfg.PID)); err != nil {
			return fmt.Errorf("tlskeys: process %d: %w", c.cfg.PID, err)
		}
	}
	c.filter = filter{tgid: uint32(max(c.cfg.PID, 0)), cgroup: cgroupID}

	// The shared maps come from the first load, for the first library
	// (or, when there is none yet, the newest layout of the table).
	paths := c.cfg.Libraries
	if len(paths) == 0 {
		paths = Candidates(c.cfg.ProcRoot, c.cfg.PID)
	}
	n, errs := c.attachAll(paths, len(c.cfg.Libraries) > 0)
	for _, err := range errs {
		if errors.Is(err, ErrPermission) || errors.Is(err, ErrNoBPF) {
			return err
		}
	}
	if len(c.cfg.Libraries) > 0 && len(errs) > 0 {
		return errors.Join(errs...)
	}
	if n == 0 && c.shared == nil {
		if len(errs) > 0 {
			return fmt.Errorf("tlskeys: no libssl could be attached: %w", errors.Join(errs...))
		}
		if c.cfg.PID > 0 {
			return fmt.Errorf("tlskeys: process %d has no OpenSSL libssl mapped (give the library with a path)", c.cfg.PID)
		}
		// Nothing yet: the maps are still created, rescans attach later.
		if _, err := c.collection(Table[len(Table)-1].Offsets); err != nil {
			return err
		}
	}
	r, err := ringbuf.NewReader(c.shared[bpf.TLSKeysMapEvents])
	if err != nil {
		return fmt.Errorf("tlskeys: ring buffer: %w", err)
	}
	c.reader = r
	return nil
}

// attachAll attaches to each file not attached yet. In strict mode every
// failure is returned; otherwise failures are logged once per file.
func (c *Collector) attachAll(paths []string, strict bool) (int, []error) {
	var errs []error
	n := 0
	for _, p := range paths {
		lib, err := OpenLibrary(p)
		if err == nil {
			if c.isAttached(lib) {
				continue
			}
			err = c.attach(lib)
		}
		if err != nil {
			if errors.Is(err, ErrPermission) || errors.Is(err, ErrNoBPF) {
				return n, append(errs, err) // no point in trying the others
			}
			errs = append(errs, err)
			if !strict {
				c.mu.Lock()
				_, logged := c.failed[p]
				c.failed[p] = err.Error()
				c.mu.Unlock()
				if !logged {
					c.log.Warn("tls keys: library not attached", "path", p, "err", err)
				}
			}
			continue
		}
		n++
	}
	return n, errs
}

func (c *Collector) isAttached(lib Library) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attached[[2]uint64{lib.dev, lib.ino}]
}

// collection returns the loaded programs for a struct layout, loading
// them (and, the first time, the shared maps) if needed. c.mu is held by
// the caller or not needed (open).
func (c *Collector) collection(off Offsets) (*bpf.TLSKeysObjects, error) {
	if objs, ok := c.colls[off]; ok {
		return objs, nil
	}
	spec, err := bpf.LoadTLSKeys()
	if err != nil {
		return nil, fmt.Errorf("tlskeys: %w", err)
	}
	vars := map[string]any{
		bpf.TLSKeysVarOff:          bpfOffsets(off),
		bpf.TLSKeysVarTargetTgid:   c.filter.tgid,
		bpf.TLSKeysVarTargetCgroup: c.filter.cgroup,
	}
	for name, v := range vars {
		vs, ok := spec.Variables[name]
		if !ok {
			return nil, fmt.Errorf("tlskeys: eBPF object has no variable %q", name)
		}
		if err := vs.Set(v); err != nil {
			return nil, fmt.Errorf("tlskeys: set %s: %w", name, err)
		}
	}
	objs := &bpf.TLSKeysObjects{}
	opts := &ebpf.CollectionOptions{MapReplacements: c.shared}
	if err := spec.LoadAndAssign(objs, opts); err != nil {
		return nil, fmt.Errorf("tlskeys: loading the eBPF programs: %w", loadErr(err))
	}
	if c.shared == nil {
		c.shared = map[string]*ebpf.Map{
			bpf.TLSKeysMapEvents: objs.Events, bpf.TLSKeysMapCalls: objs.Calls,
			bpf.TLSKeysMapSent: objs.Sent, bpf.TLSKeysMapStats: objs.Stats,
		}
	}
	c.colls[off] = objs
	return objs, nil
}

// attach puts the uprobes on one library.
func (c *Collector) attach(lib Library) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("tlskeys: collector closed")
	}
	objs, err := c.collection(lib.Layout.Offsets)
	if err != nil {
		return err
	}
	ex, err := link.OpenExecutable(lib.Path)
	if err != nil {
		return fmt.Errorf("libssl %s: %w", lib.Path, err)
	}
	opts := &link.UprobeOptions{PID: c.cfg.PID}
	var links []link.Link
	fail := func(err error) error {
		for _, l := range links {
			l.Close()
		}
		return err
	}
	for _, h := range hooks {
		if h.kind == hookReadWrite && c.cfg.HandshakeOnly {
			continue
		}
		var prog *ebpf.Program
		switch h.kind {
		case hookHandshake:
			prog = objs.SslEnter
		case hookReadWrite:
			prog = objs.SslRw
		case hookEnd:
			prog = objs.SslEnd
		case hookFree:
			prog = objs.SslFree
		}
		enter, err := ex.Uprobe(h.symbol, prog, opts)
		if err != nil {
			if !h.required && errors.Is(err, link.ErrNoSymbol) {
				continue
			}
			return fail(fmt.Errorf("libssl %s: uprobe %s: %w", lib.Path, h.symbol, loadErr(err)))
		}
		links = append(links, enter)
		if h.kind != hookHandshake {
			continue
		}
		exit, err := ex.Uretprobe(h.symbol, objs.SslExit, opts)
		if err != nil {
			return fail(fmt.Errorf("libssl %s: uretprobe %s: %w", lib.Path, h.symbol, loadErr(err)))
		}
		links = append(links, exit)
	}
	c.links = append(c.links, links...)
	c.libs = append(c.libs, lib)
	c.attached[[2]uint64{lib.dev, lib.ino}] = true
	c.log.Info("tls keys: attached to libssl", "path", lib.Path, "openssl", lib.Version.String(),
		"offsets_verified", lib.Layout.Verified != "", "probes", len(links))
	if lib.Layout.Verified == "" {
		c.log.Warn("tls keys: the struct offsets for this OpenSSL version come from its headers and were not verified live",
			"openssl", lib.Version.String(), "path", lib.Path)
	}
	return nil
}

// Libraries returns the libraries attached so far.
func (c *Collector) Libraries() []Library {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Library(nil), c.libs...)
}

// Run reads the secrets until ctx is done, calling emit for each new line
// (each label of each connection once), and rescans for libraries that
// processes load later (unless the libraries were given). It returns nil
// when ctx is done.
func (c *Collector) Run(ctx context.Context, emit func(Secret)) error {
	stop := context.AfterFunc(ctx, func() { c.reader.Close() })
	defer stop()
	var rescans sync.WaitGroup
	defer rescans.Wait()
	if len(c.cfg.Libraries) == 0 && c.cfg.Rescan > 0 {
		rescanCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		rescans.Go(func() { c.rescanLoop(rescanCtx) })
	}
	defer func() {
		st := c.Stats()
		c.log.Info("tls keys: collector stopped", "libraries", st.Libraries, "connections", st.Connections, "lines", st.Lines,
			"duplicates", st.Duplicates, "lost", st.Lost, "faults", st.Faults, "not_ready", st.NotReady, "bad", st.Bad)
	}()
	var rec ringbuf.Record
	var ev bpf.TLSKeysEvent
	for {
		if err := c.reader.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return nil
			}
			return fmt.Errorf("tlskeys: ring buffer: %w", err)
		}
		if _, err := binary.Decode(rec.RawSample, binary.NativeEndian, &ev); err != nil {
			c.bad.Add(1)
			continue
		}
		cn := connOf(&ev)
		secrets, err := cn.secrets()
		if err != nil {
			c.bad.Add(1)
			c.log.Warn("tls keys: connection skipped", "pid", cn.pid, "comm", cn.comm, "tls_version", fmt.Sprintf("0x%04x", cn.version), "err", err)
			continue
		}
		for _, s := range secrets {
			if !c.seen.First(s) {
				c.duplicates.Add(1)
				continue
			}
			c.emitted.Add(1)
			emit(s)
		}
	}
}

func (c *Collector) rescanLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.Rescan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.attachAll(Candidates(c.cfg.ProcRoot, c.cfg.PID), false)
		}
	}
}

// Stats returns the collector's counters.
func (c *Collector) Stats() Stats {
	s := Stats{Lines: c.emitted.Load(), Duplicates: c.duplicates.Load(), Bad: c.bad.Load()}
	c.mu.Lock()
	m := c.shared[bpf.TLSKeysMapStats]
	s.Libraries = len(c.libs)
	c.mu.Unlock()
	if m != nil {
		var v uint64
		for i, dst := range []*int64{&s.Connections, &s.Lost, &s.Faults, &s.NotReady} {
			if m.Lookup(uint32(i), &v) == nil {
				*dst = int64(v)
			}
		}
	}
	return s
}

// Close detaches the probes and frees the eBPF objects.
func (c *Collector) Close() error {
	c.closeOnce.Do(func() {
		if c.reader != nil {
			c.reader.Close()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.closed = true
		for _, l := range c.links {
			l.Close()
		}
		c.links = nil
		for _, o := range c.colls {
			o.TLSKeysPrograms.Close()
		}
		for _, m := range c.shared {
			m.Close()
		}
	})
	return nil
}

func connOf(ev *bpf.TLSKeysEvent) conn {
	c := conn{
		pid: ev.Pid, comm: string(bytes.TrimRight(ev.Comm[:], "\x00")), version: ev.Version,
		cipherID: ev.CipherId, clientRandom: ev.ClientRandom,
	}
	if ev.Version == 0x0304 {
		c.handshakeSecret = ev.HandshakeSecret[:]
		c.handshakeHash = ev.HandshakeTrafficHash[:]
		c.clientApp = ev.ClientAppTrafficSecret[:]
		c.serverApp = ev.ServerAppTrafficSecret[:]
		c.exporter = ev.ExporterMasterSecret[:]
	} else if n := ev.MasterKeyLength; n > 0 && n <= uint64(len(ev.MasterKey)) {
		c.masterKey = clone(ev.MasterKey[:n])
	}
	return c
}

func bpfOffsets(o Offsets) bpf.TLSKeysOffsets {
	b := bpf.TLSKeysOffsets{
		Version: o.Version, S3: o.S3, ClientRandom: o.ClientRandom, Session: o.Session,
		MasterKeyLength: o.MasterKeyLength, MasterKey: o.MasterKey, Cipher: o.Cipher, CipherId: o.CipherID,
		HandshakeSecret: o.HandshakeSecret, HandshakeTrafficHash: o.HandshakeHash,
		ClientAppTrafficSecret: o.ClientAppSecret, ServerAppTrafficSecret: o.ServerAppSecret,
		ExporterMasterSecret: o.ExporterSecret,
	}
	if o.S3Pointer {
		b.S3Pointer = 1
	}
	return b
}

// loadErr makes the kernel's refusals precise.
func loadErr(err error) error {
	if pe := permErr(err); pe != nil {
		return fmt.Errorf("%w: %v", pe, err)
	}
	return err
}

func permErr(err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return ErrPermission
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.ENOSYS):
		return ErrNoBPF
	}
	return nil
}

// CgroupID returns the id of a cgroup v2 directory (its inode number, what
// bpf_get_current_cgroup_id returns).
func CgroupID(path string) (uint64, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", path, err)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return 0, fmt.Errorf("cgroup %s: not a cgroup v2 directory (the eBPF filter works on the unified hierarchy, e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified)", path)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", path, err)
	}
	return st.Ino, nil
}
