package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/segment"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/testcap"
)

func TestAgentUsage(t *testing.T) {
	dir := t.TempDir()
	pcap := testcap.Path(t, "ark-http-simple-get.pcap")
	base := []string{"agent", "--store", dir, "--spool", filepath.Join(dir, "spool"), "--metrics", "off"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "give --iface to capture, or --pcap"},
		{[]string{"--iface", "lo", "--pcap", pcap}, "exclude each other"},
		{[]string{"--pcap", pcap, "--netns", "x"}, "--netns goes with --iface"},
		{[]string{"--iface", "lo", "--pace"}, "--pace goes with --pcap"},
		{[]string{"--pcap", pcap, "--streams", "0"}, "--streams 0"},
		{[]string{"--pcap", pcap, "--agent-id", "a/b"}, "--agent-id"},
		{[]string{"--pcap", pcap, "--store", "ftp://x"}, "unsupported scheme"},
		{[]string{"--pcap", pcap, "--spool-max", "1MiB"}, "smaller than one segment"},
		{[]string{"--pcap", pcap, "--log-level", "loud"}, "--log-level"},
		{[]string{"--iface", "lo", "extra"}, "unexpected arguments"},
	} {
		_, err := runCLI(t, append(slices.Clone(base), c.args...)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error with %q", c.args, err, c.want)
		}
	}
	_, err := runCLI(t, append(slices.Clone(base), "--iface", "flowlake-none0", "--agent-id", "x")...)
	if err == nil || !strings.Contains(err.Error(), "flowlake-none0") {
		t.Errorf("missing interface: %v", err)
	}
}

// `flowlake agent --pcap` replays capture files into segments in the store,
// set up from a config file, and exits at the end of the input with the
// spool empty; every packet is in exactly one segment.
func TestAgentReplayCLI(t *testing.T) {
	dir := t.TempDir()
	pcaps := []string{testcap.Path(t, "zeek-wikipedia.pcap"), testcap.Path(t, "ark-http-simple-get.pcap")}
	conf := filepath.Join(dir, "agent.yaml")
	body := fmt.Sprintf("store: %s\nspool: %s\nagent-id: from-file\nstreams: 3\nmax-bytes: 4KiB\nmetrics: \"off\"\nhosts: \"off\"\n",
		filepath.Join(dir, "store"), filepath.Join(dir, "spool"))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "FLOWLAKE_AGENT_ID" {
			return "replay1"
		}
		return ""
	}
	var out, errb bytes.Buffer
	args := append([]string{"agent", "--config", conf, "--pcap"}, pcaps...)
	if err := run(context.Background(), args, getenv, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	for _, want := range []string{`"msg":"agent stopped"`, `"agent":"replay1"`} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, errb.String())
		}
	}
	st, err := store.NewLocal(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	segs := agentSegments(t, st, "replay1")
	if len(segs) != 3 {
		t.Errorf("%d streams, want 3", len(segs))
	}
	var got, want []string
	for _, ss := range segs {
		for _, s := range ss {
			for _, p := range readPackets(t, bytes.NewReader(s.data)) {
				got = append(got, fmt.Sprintf("%d %x", p.ts, p.data))
			}
		}
	}
	for _, f := range pcaps {
		for _, p := range readCaptureFile(t, f) {
			want = append(want, fmt.Sprintf("%d %x", p.ts, p.data))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%d packets in the segments, %d in the files", len(got), len(want))
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "spool", "objects")); len(ents) != 0 {
		t.Errorf("spool not empty: %v", ents)
	}
}

// agentSegments returns the segments of agent in st per stream, checking
// that each stream is numbered 0..n-1 with no number twice and that each
// object is a segment stored at the key its metadata names.
func agentSegments(t *testing.T, st store.Store, agent string) map[int][]storedSegment {
	t.Helper()
	ctx := context.Background()
	by := map[int]map[uint64]storedSegment{}
	err := st.List(ctx, keys.PrefixRaw+"agent="+agent+"/", func(info store.Info) error {
		data, err := st.GetRange(ctx, info.Key, 0, -1)
		if err != nil {
			return err
		}
		m, err := segment.ReadMeta(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", info.Key, err)
		}
		if k := segment.Key(m); k != info.Key {
			return fmt.Errorf("segment stored at %s, its metadata names %s", info.Key, k)
		}
		if by[m.Stream] == nil {
			by[m.Stream] = map[uint64]storedSegment{}
		}
		if _, dup := by[m.Stream][m.Seq]; dup {
			return fmt.Errorf("stream %d: seq %d stored twice", m.Stream, m.Seq)
		}
		by[m.Stream][m.Seq] = storedSegment{info.Key, data, m}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]storedSegment{}
	for k, m := range by {
		for seq := range uint64(len(m)) {
			s, ok := m[seq]
			if !ok {
				t.Fatalf("stream %d: %d segments but no seq %d", k, len(m), seq)
			}
			out[k] = append(out[k], s)
		}
	}
	return out
}

// packetSet counts packets by their bytes (timestamps aside).
func packetSet(t *testing.T, captures ...[]byte) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, c := range captures {
		for _, p := range readPackets(t, bytes.NewReader(c)) {
			m[string(p.data)]++
		}
	}
	return m
}

// capturePackets reads a capture file's packets (for tcpdump's).
func capturePackets(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := capture.NewReader(bytes.NewReader(b)); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// The Kubernetes manifest sets only settings the agent has, as
// FLOWLAKE_<FLAG> variables, and runs it with what AF_PACKET needs.
func TestAgentDaemonSetManifest(t *testing.T) {
	b, err := os.ReadFile("../../infra/k8s/agent-daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var help bytes.Buffer
	if err := runAgent(context.Background(), []string{"-h"}, func(string) string { return "" }, &help, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	var ds map[string]any
	var vars []string
	for _, doc := range strings.Split(string(b), "\n---\n") {
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			t.Fatal(err)
		}
		switch m["kind"] {
		case "ConfigMap":
			for k := range m["data"].(map[string]any) {
				vars = append(vars, k)
			}
		case "DaemonSet":
			ds = m
		}
	}
	if ds == nil {
		t.Fatal("no DaemonSet")
	}
	pod := ds["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	c := pod["containers"].([]any)[0].(map[string]any)
	for _, e := range c["env"].([]any) {
		vars = append(vars, e.(map[string]any)["name"].(string))
	}
	n := 0
	for _, v := range vars {
		name, ok := strings.CutPrefix(v, "FLOWLAKE_")
		if !ok {
			continue
		}
		n++
		flagName := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if !strings.Contains(help.String(), "  -"+flagName+" ") && !strings.Contains(help.String(), "  -"+flagName+"\n") {
			t.Errorf("%s sets no flag of flowlake agent (-%s)", v, flagName)
		}
	}
	if n < 8 {
		t.Errorf("only %d FLOWLAKE_ settings found", n)
	}
	caps := fmt.Sprint(c["securityContext"].(map[string]any)["capabilities"])
	if pod["hostNetwork"] != true || !strings.Contains(caps, "NET_RAW") || !strings.Contains(caps, "NET_ADMIN") {
		t.Errorf("hostNetwork %v, capabilities %s", pod["hostNetwork"], caps)
	}
	if fmt.Sprint(c["args"]) != "[agent --log-level info]" {
		t.Errorf("args %v", c["args"])
	}
}
