package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

func TestCompactCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)
	for seg := range 10 {
		w := lake.NewWriter(lake.StoreSink{Store: st}, lake.Options{Name: fmt.Sprintf("seg-a-0-%020d", seg)})
		for i := range 5 {
			ts := hour.Add(time.Duration(seg*60+i) * time.Second).UnixMicro()
			w.HTTP.Add(schema.HTTP{ID: fmt.Sprintf("h%d-%d", seg, i), TS: ts, Method: "GET", URI: "/"})
		}
		w.ParseStatus.Add(schema.ParseStatus{TS: hour.Add(time.Duration(seg) * time.Minute).UnixMicro(), Agent: "a", Seq: int64(seg)})
		if _, err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	partition := keys.LakePartition(hour)
	liveFiles := func(table string) []string {
		files, err := lake.ListFiles(ctx, st, table, hour.UnixMicro(), hour.Add(time.Hour).UnixMicro())
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			files[i] = path.Base(f)
		}
		return files
	}

	out, err := runCLI(t, "compact", "--store", dir, "--table", "http,parse_status", "--grace", "20ms")
	if err != nil {
		t.Fatalf("compact: %v\n%s", err, out)
	}
	for _, want := range []string{"http           " + partition + "  merged 10 files", "parse_status   " + partition + "  merged 10 files", "2 partitions checked, 2 merged (20 files"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, table := range []string{schema.TableHTTP, schema.TableParseStatus} {
		if files := liveFiles(table); len(files) != 1 || !keys.IsCompact(files[0]) {
			t.Errorf("%s: readers read %v, want one compacted file", table, files)
		}
	}

	time.Sleep(30 * time.Millisecond)
	out, err = runCLI(t, "compact", "--store", dir, "--grace", "20ms")
	if err != nil {
		t.Fatalf("second compact: %v\n%s", err, out)
	}
	if !strings.Contains(out, partition+"  version 2; 10 replaced files deleted\n") || !strings.Contains(out, "0 merged, 20 replaced files deleted\n") {
		t.Errorf("second run output:\n%s", out)
	}
	var names []string
	if err := st.List(ctx, keys.LakePartitionPrefix(schema.TableHTTP, partition), func(o store.Info) error {
		names = append(names, path.Base(o.Key))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 { // the compacted file and manifests 1 and 2
		t.Errorf("partition holds %v after the deletion", names)
	}

	out, err = runCLI(t, "compact", "--store", dir, "-q")
	if err != nil || out != "" {
		t.Errorf("quiet run: %v, output %q", err, out)
	}

	for _, args := range [][]string{
		{"compact", "--store", dir, "--table", "nope"},
		{"compact", "--store", dir, "--grace", "0s"},
		{"compact", "--store", dir, "--older-than", "-1h"},
		{"compact", "--store", dir, "extra"},
	} {
		var ue usageError
		if _, err := runCLI(t, args...); !errors.As(err, &ue) {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
}
