package agent

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type testFlags struct {
	fs     *flag.FlagSet
	iface  *string
	every  *time.Duration
	k      *int
	pace   *bool
	pcaps  *StringList
	config *string
}

func newTestFlags() testFlags {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := testFlags{fs: fs, pcaps: &StringList{}}
	f.config = fs.String("config", "", "")
	f.iface = fs.String("iface", "eth0", "")
	f.every = fs.Duration("status-every", 20*time.Second, "")
	f.k = fs.Int("streams", 2, "")
	f.pace = fs.Bool("pace", false, "")
	fs.Var(f.pcaps, "pcap", "")
	return f
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseFlagsPrecedence(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(yml, []byte("iface: from-file\nstatus-every: 5s\nstreams: 4\npace: true\npcap: [a.pcap, b.pcap]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	js := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(js, []byte(`{"iface": "json-if", "streams": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		args    []string
		env     map[string]string
		iface   string
		every   time.Duration
		k       int
		pace    bool
		pcaps   []string
		rest    []string
		wantErr string
	}{
		{name: "defaults", iface: "eth0", every: 20 * time.Second, k: 2},
		{name: "file", args: []string{"--config", yml}, iface: "from-file", every: 5 * time.Second, k: 4, pace: true, pcaps: []string{"a.pcap", "b.pcap"}},
		{name: "env over file", args: []string{"--config", yml}, env: map[string]string{"FL_IFACE": "from-env", "FL_STATUS_EVERY": "7s"},
			iface: "from-env", every: 7 * time.Second, k: 4, pace: true, pcaps: []string{"a.pcap", "b.pcap"}},
		{name: "flags over env", args: []string{"--config", yml, "--iface", "from-flag", "--streams=1"}, env: map[string]string{"FL_IFACE": "from-env"},
			iface: "from-flag", every: 5 * time.Second, k: 1, pace: true, pcaps: []string{"a.pcap", "b.pcap"}},
		{name: "config from env, json", env: map[string]string{"FL_CONFIG": js}, iface: "json-if", every: 20 * time.Second, k: 3},
		{name: "interleaved", args: []string{"--pcap", "x.pcap", "y.pcap", "--pace", "z.pcap"}, iface: "eth0", every: 20 * time.Second, k: 2,
			pace: true, pcaps: []string{"x.pcap"}, rest: []string{"y.pcap", "z.pcap"}},
		{name: "bad env", env: map[string]string{"FL_STREAMS": "many"}, wantErr: "FL_STREAMS"},
		{name: "bad flag", args: []string{"--nope"}, wantErr: "not defined"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newTestFlags()
			f.fs.SetOutput(&strings.Builder{})
			rest, err := ParseFlags(f.fs, c.args, env(c.env), "FL_", "config")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *f.iface != c.iface || *f.every != c.every || *f.k != c.k || *f.pace != c.pace ||
				!slices.Equal(*f.pcaps, c.pcaps) || !slices.Equal(rest, c.rest) {
				t.Errorf("iface %q every %v k %d pace %v pcaps %v rest %v", *f.iface, *f.every, *f.k, *f.pace, *f.pcaps, rest)
			}
		})
	}
}

func TestParseFlagsBadFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ body, want string }{
		{"nosuch: 1\n", `unknown setting "nosuch"`},
		{"streams: [1, 2]\n", "want one value"},
		{"streams: {a: 1}\n", "not a setting value"},
		{"- a\n- b\n", "want a mapping"},
		{"streams: x\n", "streams"},
	} {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		f := newTestFlags()
		_, err := ParseFlags(f.fs, []string{"--config", p}, env(nil), "FL_", "config")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.body, err, c.want)
		}
	}
	f := newTestFlags()
	if _, err := ParseFlags(f.fs, []string{"--config", filepath.Join(dir, "none.yaml")}, env(nil), "FL_", "config"); err == nil {
		t.Error("missing config file accepted")
	}
}
