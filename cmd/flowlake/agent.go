package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/flowlake/flowlake/internal/agent"
	"github.com/flowlake/flowlake/internal/agent/hosts"
	"github.com/flowlake/flowlake/internal/agent/source"
	"github.com/flowlake/flowlake/internal/agent/spool"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/segment"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/tlskeys"
)

// storeOpenTimeout bounds the first attempt at the store; the agent
// captures into its spool while the store is unreachable.
const storeOpenTimeout = 10 * time.Second

func runAgent(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowlake agent --iface IF [--filter EXPR] --store URL --agent-id ID [--streams K] [--spool DIR]\n"+
			"                      [--status-every 20s] [--metrics 127.0.0.1:9464] [--config FILE]\n"+
			"       flowlake agent --pcap FILE... [--pace] --store URL --agent-id ID ...\n"+
			"       TLS secrets: [--tls-keys [--tls-pid N | --tls-cgroup DIR] [--tls-lib FILE]...] [--keylog FILE]...\n\n"+
			"Captures packets on an interface (AF_PACKET, K streams by flow) or replays capture files,\n"+
			"cuts them into segments, keeps them in a local spool and uploads them to the store as\n"+
			"raw/agent=ID/stream=K/…/<seq>.pcapng.zst, with a status report every --status-every and\n"+
			"the host's /etc/hosts names. SIGTERM closes the open segments and uploads for up to\n"+
			"--drain-timeout; what is left stays in the spool for the next start.\n\n"+
			"--tls-keys captures the TLS secrets of the processes that use OpenSSL (1.1.1, 3.x) with\n"+
			"eBPF uprobes on libssl (root), --keylog follows SSLKEYLOGFILE files; the NSS key log lines\n"+
			"go into secrets/agent=ID/stream=K/…/<seq>.keylog, each uploaded before the segment <seq>\n"+
			"of its stream (every stream gets every line). Secrets never appear in logs or reports.\n\n"+
			"Every setting is also read from FLOWLAKE_<FLAG> (e.g. FLOWLAKE_AGENT_ID) and from the\n"+
			"--config file (JSON or YAML, keys are flag names); flags win over the environment, which\n"+
			"wins over the file.\n\nflags:")
		fs.PrintDefaults()
	}
	fs.String("config", "", "config file (JSON or YAML mapping of flag names to values)")
	iface := fs.String("iface", "", "interface to capture on")
	netns := fs.String("netns", "", "network namespace of the interface: a name (ip netns) or a path such as /proc/PID/ns/net")
	filter := fs.String("filter", "", "capture filter, tcpdump syntax (compiled by "+source.FilterCompiler+", run in the kernel)")
	storeURL := fs.String("store", "./flowlake-data", "object store: a directory, file:///DIR or s3://BUCKET[/PREFIX]")
	agentID := fs.String("agent-id", defaultAgentID(), "agent id in the object keys")
	streams := fs.Int("streams", 2, fmt.Sprintf("K: capture streams (AF_PACKET fanout sockets), 1-%d", source.MaxStreams))
	spoolDir := fs.String("spool", "/var/lib/flowlake/spool", "spool directory: segments wait there for upload")
	spoolMax := byteSize(spool.DefaultMaxBytes)
	fs.Var(&spoolMax, "spool-max", "bound of the spool; new segments are dropped (overflow) when it is full")
	maxBytes := byteSize(segment.DefaultMaxBytes)
	fs.Var(&maxBytes, "max-bytes", "captured bytes per segment at most")
	maxSpan := fs.Duration("max-span", segment.DefaultMaxSpan, "time per segment at most (also on a quiet link)")
	ring := byteSize(source.DefaultRingBytes)
	fs.Var(&ring, "ring", "AF_PACKET ring size per stream")
	promisc := fs.Bool("promisc", true, "put the interface in promiscuous mode while capturing")
	statusEvery := fs.Duration("status-every", agent.DefaultStatusEvery, "interval of the status reports")
	metrics := fs.String("metrics", "127.0.0.1:9464", "address of the Prometheus /metrics endpoint (\"off\": none)")
	hostsFile := fs.String("hosts", hosts.DefaultPath, "hosts file whose names are published for parse (\"off\": none)")
	tlsKeys := fs.Bool("tls-keys", false, "capture the TLS secrets of processes that use OpenSSL (eBPF uprobes on libssl; needs root)")
	tlsPID := fs.Int("tls-pid", 0, "TLS secrets of this process only (implies --tls-keys)")
	tlsCgroup := fs.String("tls-cgroup", "", "TLS secrets of the processes of this cgroup v2 directory and below only (implies --tls-keys)")
	tlsHandshakeOnly := fs.Bool("tls-handshake-only", false, "with --tls-keys: no uprobes on SSL_read/SSL_write (cheaper on chatty connections;\n"+
		"programs whose handshake runs inside SSL_read/SSL_write then give their keys only when the connection ends)")
	var tlsLibs, keylogs agent.StringList
	fs.Var(&tlsLibs, "tls-lib", "libssl file (or program with OpenSSL linked in) to attach to; repeatable (implies --tls-keys;\n"+
		"default: the system's libssl and those running processes map, looked for again every 10 s)")
	fs.Var(&keylogs, "keylog", "SSLKEYLOGFILE to follow while it grows (like tail -F); its lines go into secrets/ too; repeatable")
	var pcaps agent.StringList
	fs.Var(&pcaps, "pcap", "replay capture files instead of capturing (repeatable; files may also follow the flags)")
	pace := fs.Bool("pace", false, "with --pcap: replay in real time")
	drain := fs.Duration("drain-timeout", agent.DefaultDrainTimeout, "on stop: how long to go on uploading")
	retryMin := fs.Duration("retry-min", spool.DefaultMinBackoff, "first wait before an upload is retried")
	retryMax := fs.Duration("retry-max", spool.DefaultMaxBackoff, "longest wait between upload attempts")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")

	rest, err := agent.ParseFlags(fs, args, getenv, "FLOWLAKE_", "config")
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{"agent: " + err.Error()}
	}
	if len(rest) > 0 {
		if len(pcaps) == 0 && *iface != "" {
			return usageError{fmt.Sprintf("agent: unexpected arguments %q (capture files go with --pcap)", rest)}
		}
		pcaps = append(pcaps, rest...)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError{fmt.Sprintf("agent: --log-level %q: want debug, info, warn or error", *logLevel)}
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})).With("cmd", "agent")
	switch {
	case *iface == "" && len(pcaps) == 0:
		fs.Usage()
		return usageError{"agent: give --iface to capture, or --pcap FILE... to replay"}
	case *iface != "" && len(pcaps) > 0:
		return usageError{"agent: --iface and --pcap exclude each other"}
	case *pace && len(pcaps) == 0:
		return usageError{"agent: --pace goes with --pcap"}
	case *netns != "" && *iface == "":
		return usageError{"agent: --netns goes with --iface"}
	case *streams < 1 || *streams > source.MaxStreams:
		return usageError{fmt.Sprintf("agent: --streams %d: want 1 to %d", *streams, source.MaxStreams)}
	case maxBytes > maxSegmentBytes:
		return usageError{fmt.Sprintf("agent: --max-bytes %s: segments are built in memory; want at most %s", maxBytes.String(), formatSize(maxSegmentBytes))}
	case *maxSpan <= 0 || *statusEvery <= 0 || *drain <= 0 || *retryMin <= 0 || *retryMax < *retryMin:
		return usageError{"agent: --max-span, --status-every, --drain-timeout and --retry-min must be positive, --retry-max at least --retry-min"}
	case int64(spoolMax) < int64(maxBytes):
		return usageError{fmt.Sprintf("agent: --spool-max %s is smaller than one segment (--max-bytes %s)", spoolMax.String(), maxBytes.String())}
	case *spoolDir == "":
		return usageError{"agent: --spool: no directory"}
	case *tlsPID < 0:
		return usageError{fmt.Sprintf("agent: --tls-pid %d: want a process id", *tlsPID)}
	case *tlsPID > 0 && *tlsCgroup != "":
		return usageError{"agent: --tls-pid and --tls-cgroup exclude each other"}
	}
	if *tlsPID > 0 || *tlsCgroup != "" || len(tlsLibs) > 0 {
		*tlsKeys = true
	}
	if err := keys.ValidAgent(*agentID); err != nil {
		return usageError{fmt.Sprintf("agent: --agent-id: %v", err)}
	}
	if err := checkStoreURL(*storeURL); err != nil {
		return usageError{"agent: --store: " + err.Error()}
	}
	if *metrics == "off" {
		*metrics = ""
	}
	if *hostsFile == "off" {
		*hostsFile = ""
	}

	// The store first: the rings fill from the moment the sockets open. An
	// S3 store may be unreachable for now (the agent captures into its
	// spool meanwhile); a directory that cannot be opened is an error.
	var st store.Store
	if strings.HasPrefix(*storeURL, "s3://") {
		var err error
		st, err = agent.NewLazyStore(ctx, *storeURL, store.Open, storeOpenTimeout)
		if err != nil {
			log.Warn("store not reachable at start: capturing into the spool, uploads retry until it is", "store", *storeURL, "err", err)
		}
	} else if st, err = store.Open(ctx, *storeURL); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	// The key sources before the capture: without root or eBPF the agent
	// stops here, with the reason.
	var keySources []agent.KeySource
	if len(keylogs) > 0 {
		keySources = append(keySources, tlskeys.NewFollower(keylogs, 0, log))
	}
	if *tlsKeys {
		col, err := tlskeys.Open(tlskeys.Config{Libraries: tlsLibs, PID: *tlsPID, Cgroup: *tlsCgroup, HandshakeOnly: *tlsHandshakeOnly, Log: log})
		if err != nil {
			return fmt.Errorf("agent: --tls-keys: %w", err)
		}
		defer col.Close()
		keySources = append(keySources, col)
	}
	var src source.Source
	if len(pcaps) > 0 {
		src, err = source.NewReplay(source.ReplayConfig{Files: pcaps, Streams: *streams, Pace: *pace, Filter: *filter, Log: log})
	} else {
		src, err = source.OpenAFPacket(source.AFPacketConfig{
			Interface: *iface, Streams: *streams, Filter: *filter, RingBytes: int(ring),
			Promiscuous: *promisc, Netns: *netns, Log: log,
		})
	}
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a, err := agent.New(ctx, agent.Config{
		ID: *agentID, Store: st, Source: src,
		SpoolDir: *spoolDir, SpoolBytes: int64(spoolMax),
		SegmentBytes: int64(maxBytes), SegmentSpan: *maxSpan, WallClock: len(pcaps) == 0 || *pace,
		StatusEvery: *statusEvery, HostsFile: *hostsFile, DrainTimeout: *drain,
		MinBackoff: *retryMin, MaxBackoff: *retryMax, MetricsAddr: *metrics, Log: log, KeySources: keySources,
	})
	if err != nil {
		src.Close()
		return err
	}
	if addr := a.MetricsAddr(); addr != "" {
		log.Info("metrics", "url", "http://"+addr+"/metrics")
	}
	if err := a.Run(ctx); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// defaultAgentID is the host name with the characters an agent id may not
// hold replaced by '-'.
func defaultAgentID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "agent"
	}
	b := []byte(h)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	id := strings.TrimLeft(string(b), ".")
	if len(id) > 64 {
		id = id[:64]
	}
	if id == "" {
		return "agent"
	}
	return id
}

// checkStoreURL rejects store URLs that store.Open never accepts, so that
// a typo is a usage error rather than an endless retry.
func checkStoreURL(raw string) error {
	if raw == "" {
		return errors.New("empty URL: want a directory, file://DIR or s3://BUCKET[/PREFIX]")
	}
	u, err := url.Parse(raw)
	if err != nil || len(u.Scheme) < 2 {
		return nil // a path
	}
	switch u.Scheme {
	case "file", "s3":
		if u.Scheme == "s3" && u.Host == "" {
			return fmt.Errorf("%q: no bucket: want s3://BUCKET[/PREFIX]", raw)
		}
		return nil
	}
	return fmt.Errorf("%q: unsupported scheme %q: want a directory, file://DIR or s3://BUCKET[/PREFIX]", raw, u.Scheme)
}
