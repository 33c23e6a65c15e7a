package hosts

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/store"
)

const sample = `# The following lines are desirable for IPv4 capable hosts
127.0.0.1       localhost
127.0.1.1	web-1.example.internal web-1   # this host
10.0.0.5 db.internal db
10.0.0.5 second-name-ignored
::1     localhost ip6-localhost ip6-loopback
fe80::1%eth0 linklocal
ff02::1 ip6-allnodes
not-an-address name
10.0.0.6
10.0.0.7 bad\x01name
::ffff:10.0.0.8 mapped
`

func TestParse(t *testing.T) {
	got, err := Parse(strings.NewReader(strings.ReplaceAll(sample, `\x01`, "\x01")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]string{
		netip.MustParseAddr("127.0.0.1"): "localhost",
		netip.MustParseAddr("127.0.1.1"): "web-1.example.internal",
		netip.MustParseAddr("10.0.0.5"):  "db.internal",
		netip.MustParseAddr("::1"):       "localhost",
		netip.MustParseAddr("fe80::1"):   "linklocal",
		netip.MustParseAddr("ff02::1"):   "ip6-allnodes",
		netip.MustParseAddr("10.0.0.8"):  "mapped",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestEncodeDecodeLoad(t *testing.T) {
	names := map[netip.Addr]string{netip.MustParseAddr("10.0.0.5"): "db", netip.MustParseAddr("2001:db8::1"): "v6"}
	a, err := Encode("agent-1", "/etc/hosts", names)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Encode("agent-1", "/etc/hosts", names)
	if !bytes.Equal(a, b) {
		t.Error("the same names encode differently")
	}
	doc, got, err := Decode(a)
	if err != nil || doc.Agent != "agent-1" || doc.Source != "/etc/hosts" || !reflect.DeepEqual(got, names) {
		t.Fatalf("decode: %+v %v %v", doc, got, err)
	}
	if Key("agent-1") != "config/agents/agent-1/hosts.json" {
		t.Errorf("key %s", Key("agent-1"))
	}
	ctx := context.Background()
	mem := store.NewMem()
	if m, err := Load(ctx, mem, "agent-1"); m != nil || err != nil {
		t.Errorf("no document: %v %v", m, err)
	}
	if err := mem.Put(ctx, Key("agent-1"), bytes.NewReader(a), int64(len(a))); err != nil {
		t.Fatal(err)
	}
	if m, err := Load(ctx, mem, "agent-1"); err != nil || !reflect.DeepEqual(m, names) {
		t.Errorf("load: %v %v", m, err)
	}
	for _, bad := range []string{"{", `{"version":2,"hosts":{}}`} {
		if err := mem.Put(ctx, Key("agent-2"), strings.NewReader(bad), int64(len(bad))); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(ctx, mem, "agent-2"); !errors.Is(err, ErrBadDocument) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Entries that are not an address and a name are skipped.
	_, got, err = Decode([]byte(`{"version":1,"hosts":{"x":"a","10.0.0.1":"","10.0.0.2":"ok"}}`))
	if err != nil || len(got) != 1 || got[netip.MustParseAddr("10.0.0.2")] != "ok" {
		t.Errorf("lenient decode: %v %v", got, err)
	}
}
