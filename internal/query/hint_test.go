package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/testcap"
)

// readLog is the store of a test lake, recording which lake objects are
// read (footers and column chunks go through GetRange).
type readLog struct {
	store.Store
	mu   sync.Mutex
	keys []string
}

func (r *readLog) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	r.mu.Lock()
	r.keys = append(r.keys, key)
	r.mu.Unlock()
	return r.Store.GetRange(ctx, key, off, n)
}

// partitions returns the partitions ("dt=…/hour=…") of table whose files
// were read, sorted, and forgets the reads.
func (r *readLog) partitions(t *testing.T, table string) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, k := range r.keys {
		o, err := keys.ParseLake(k)
		if err != nil || o.Table != table {
			continue
		}
		out = append(out, o.Partition)
	}
	r.keys = nil
	slices.Sort(out)
	return slices.Compact(out)
}

func TestCommunicationHint(t *testing.T) {
	l := buildTestLake(t)
	ctx := context.Background()
	// Rows of the synthetic lake's first hour (of three) and of the
	// captures, with their ts.
	type row struct {
		id string
		ts time.Time
	}
	var rows []row
	for _, where := range []string{
		"agent <> 'cap-web' AND agent <> 'cap-small' AND epoch_us(ts) < " + strconv.FormatInt(l.synthFrom+time.Hour.Microseconds(), 10),
		"agent = 'cap-web'",
	} {
		var r row
		var us int64
		if err := l.db.QueryRow(`SELECT id, epoch_us(ts) FROM http WHERE `+where+` ORDER BY id LIMIT 1`).Scan(&r.id, &us); err != nil {
			t.Fatal(err)
		}
		r.ts = time.UnixMicro(us).UTC()
		rows = append(rows, r)
	}
	for _, r := range rows {
		rl := &readLog{Store: l.st}
		newEngine := func() *Engine { // fresh footer cache: every file looked at is read
			e, err := New(rl, Options{})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		want, err := newEngine().Communication(ctx, r.id, nil, time.Time{})
		if err != nil {
			t.Fatalf("%s without hint: %v", r.id, err)
		}
		unhinted := rl.partitions(t, "http")
		own := keys.LakePartition(r.ts)
		if len(unhinted) < 2 || !slices.Contains(unhinted, own) {
			t.Fatalf("%s: the unhinted lookup read http partitions %v: want several, with %s", r.id, unhinted, own)
		}
		if want.TCP == nil {
			t.Errorf("%s: no TCP facts", r.id)
		}
		for _, c := range []struct {
			name string
			hint time.Time
			// only, if set: the lookup reads no other http partition.
			only string
		}{
			{"exact", r.ts, own},
			{"to the millisecond, in another zone", r.ts.Truncate(time.Millisecond).In(time.FixedZone("", -5*3600)), own},
			{"rounded to the second", r.ts.Round(time.Second), ""},
			{"wrong by 2h", r.ts.Add(2 * time.Hour), ""},
			{"wrong by 5m", r.ts.Add(-5 * time.Minute), ""},
			{"far before any data", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), ""},
			{"far after any data", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), ""},
			{"epoch", time.Unix(0, 0), ""},
		} {
			got, err := newEngine().Communication(ctx, r.id, nil, c.hint)
			if err != nil {
				t.Errorf("%s, hint %s: %v", r.id, c.name, err)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s, hint %s: detail differs:\n got %+v\nwant %+v", r.id, c.name, got, want)
			}
			read := rl.partitions(t, "http")
			if c.only != "" && !slices.Equal(read, []string{c.only}) {
				t.Errorf("%s, hint %s: read http partitions %v, want only %s", r.id, c.name, read, c.only)
			}
		}
		// The same with a scope: in scope found, out of scope not found,
		// whatever the hint.
		if got, err := newEngine().Communication(ctx, r.id, []string{want.Agent}, r.ts); err != nil || got.ID != r.id {
			t.Errorf("%s in scope %s, hinted: %v", r.id, want.Agent, err)
		}
		for _, h := range []time.Time{r.ts, r.ts.Add(time.Hour)} {
			if _, err := newEngine().Communication(ctx, r.id, []string{"someone-else"}, h); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s out of scope, hint %s: %v, want not found", r.id, h, err)
			}
		}
	}
	// Malformed or unknown ids are not found, hinted or not.
	e := newTestEngine(t, l, Options{})
	for _, id := range []string{"", strings.Repeat("x", 300), "no-such-id", rows[0].id + "x"} {
		if _, err := e.Communication(ctx, id, nil, rows[0].ts); !errors.Is(err, ErrNotFound) {
			t.Errorf("id %.20q with a hint: %v, want not found", id, err)
		}
	}
}

// The TLS handshake of a decrypted exchange is found (in the connection's
// time), hinted or not: a lake of a capture decrypted with its key log.
func TestCommunicationTLS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys := keylog.New()
	if err := keys.ReadFile(testcap.Path(t, "zeek-tls12-decryption.keylog")); err != nil {
		t.Fatal(err)
	}
	w := lake.NewWriter(lake.StoreSink{Store: st}, lake.Options{Name: "tls", Agent: "tls"})
	sink := engine.LakeSink{W: w}
	if _, err := engine.ParseFiles(ctx, []string{testcap.Path(t, "zeek-tls12-decryption.pcap")}, engine.Config{Agent: "tls", Keys: keys}, sink, sink, engine.FilesOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id, sni string
	var ts int64
	err = db.QueryRow(fmt.Sprintf(`SELECT h.id, epoch_us(h.ts), t.sni
		FROM read_parquet('%[1]s/lake/http/*/*/*.parquet') h JOIN read_parquet('%[1]s/lake/tls/*/*/*.parquet') t ON t.tcp_id = h.tcp_id
		WHERE h.tls LIMIT 1`, dir)).Scan(&id, &ts, &sni)
	if err != nil {
		t.Fatalf("a decrypted exchange with its handshake: %v", err)
	}
	e, err := New(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, hint := range []time.Time{{}, time.UnixMicro(ts), time.UnixMicro(ts).Add(5 * time.Hour)} {
		d, err := e.Communication(ctx, id, nil, hint)
		if err != nil || d.TCP == nil || d.TLSInfo == nil || d.TLSInfo.SNI != sni || !d.TLS {
			t.Errorf("%s (hint %v): %v; tcp %+v, tls %+v; want sni %q", id, hint, err, d.TCP, d.TLSInfo, sni)
		}
	}
}
