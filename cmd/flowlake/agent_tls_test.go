package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/testcap"
)

func TestAgentTLSUsage(t *testing.T) {
	dir := t.TempDir()
	pcap := testcap.Path(t, "ark-http-simple-get.pcap")
	base := []string{"agent", "--store", dir, "--spool", filepath.Join(dir, "spool"), "--metrics", "off", "--pcap", pcap}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-pid", "-3"}, "--tls-pid -3"},
		{[]string{"--tls-pid", "7", "--tls-cgroup", "/sys/fs/cgroup"}, "exclude each other"},
	} {
		_, err := runCLI(t, append(slices.Clone(base), c.args...)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error with %q", c.args, err, c.want)
		}
	}
	// Not a cgroup v2 directory (as root), or no permission: either way the
	// agent does not start, and says why.
	_, err := runCLI(t, append(slices.Clone(base), "--tls-cgroup", dir)...)
	if err == nil || !strings.Contains(err.Error(), "--tls-keys") {
		t.Errorf("--tls-cgroup %s: %v", dir, err)
	}
	if os.Geteuid() == 0 && !strings.Contains(err.Error(), "not a cgroup v2 directory") {
		t.Errorf("--tls-cgroup %s as root: %v", dir, err)
	}
}

// `flowlake agent --pcap … --keylog FILE` puts the key log's lines into the
// secrets objects of every stream (the replay's last segments, cut when the
// input ends, carry them) and never into its log.
func TestAgentKeylogReplay(t *testing.T) {
	dir := t.TempDir()
	keylog := filepath.Join(dir, "sslkeys.txt")
	var lines []string
	for i := range 4 {
		lines = append(lines, fmt.Sprintf("CLIENT_RANDOM %064x %096x", i+1, 0x5ec2e7000+i))
	}
	if err := os.WriteFile(keylog, []byte("# comment\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	storeDir := filepath.Join(dir, "store")
	var out, errb bytes.Buffer
	args := []string{"agent", "--store", storeDir, "--spool", filepath.Join(dir, "spool"), "--metrics", "off", "--hosts", "off",
		"--agent-id", "keylog1", "--streams", "3", "--keylog", keylog, "--pcap", testcap.Path(t, "zeek-wikipedia.pcap")}
	if err := run(context.Background(), args, func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	st, err := store.NewLocal(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	segs := agentSegments(t, st, "keylog1")
	secrets := secretsObjects(t, st, "keylog1")
	for k, ss := range segs {
		if len(ss) == 0 {
			continue
		}
		var got []string
		for _, s := range secrets[k] {
			got = append(got, s.lines...)
		}
		slices.Sort(got)
		if !slices.Equal(got, lines) {
			t.Errorf("stream %d: %d lines in its secrets objects, want the key log's %d", k, len(got), len(lines))
		}
	}
	if len(secrets) == 0 {
		t.Fatal("no secrets object")
	}
	for _, l := range lines {
		if strings.Contains(errb.String(), strings.Fields(l)[2][:24]) {
			t.Fatalf("a secret shows in the agent's log:\n%s", errb.String())
		}
	}
}

type secretsObject struct {
	key   string
	seq   uint64
	lines []string
}

// secretsObjects returns an agent's secrets objects per stream, in
// sequence order.
func secretsObjects(t *testing.T, st store.Store, agent string) map[int][]secretsObject {
	t.Helper()
	out := map[int][]secretsObject{}
	err := st.List(context.Background(), keys.PrefixSecrets+"agent="+agent+"/", func(info store.Info) error {
		p, err := keys.Parse(info.Key)
		if err != nil {
			return err
		}
		b, err := st.GetRange(context.Background(), info.Key, 0, -1)
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		out[p.Stream.Stream] = append(out[p.Stream.Stream], secretsObject{info.Key, p.Seq, lines})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k := range out {
		slices.SortFunc(out[k], func(a, b secretsObject) int { return int(a.seq) - int(b.seq) })
	}
	return out
}
