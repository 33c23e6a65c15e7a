// Package storetest is the conformance suite of store.Store: every
// implementation runs it, so that code written against one store behaves the
// same on the others.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return store.NewMem() })
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/store"
)

// LargeSize is the size of the suite's large objects: above the S3 store's
// default multipart threshold (16 MiB), so that S3 stores go through
// multipart upload.
const LargeSize = 20 << 20

// Run runs the suite. newStore must return a new, empty store each time it
// is called; the suite calls it once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"PutIfAbsent", testPutIfAbsent},
		{"PutIfAbsentLarge", testPutIfAbsentLarge},
		{"PutIfAbsentConcurrent", testPutIfAbsentConcurrent},
		{"PutIfAbsentConcurrentLarge", testPutIfAbsentConcurrentLarge},
		{"PutIfMatch", testPutIfMatch},
		{"PutIfMatchLarge", testPutIfMatchLarge},
		{"PutIfMatchConcurrent", testPutIfMatchConcurrent},
		{"Missing", testMissing},
		{"Range", testRange},
		{"List", testList},
		{"ListStop", testListStop},
		{"Delete", testDelete},
		{"Keys", testKeys},
		{"InvalidKeys", testInvalidKeys},
		{"BodySize", testBodySize},
		{"FailedWrite", testFailedWrite},
		{"Canceled", testCanceled},
		{"CanceledMidPut", testCanceledMidPut},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// payload returns n pseudo-random bytes determined by seed.
func payload(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	key[2] = byte(seed >> 16)
	key[3] = 0xf1
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b) // never fails
	return b
}

// onlyReader hides every method of r but Read, as a network body would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func put(t *testing.T, s store.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

func get(t *testing.T, s store.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("Get(%q): close: %v", key, err)
	}
	return b
}

// same reports a difference between two byte slices without printing them.
func same(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: got %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one matching %v", what, err, target)
	}
}

func mustNotExist(t *testing.T, s store.Store, key string) {
	t.Helper()
	ctx := t.Context()
	rc, err := s.Get(ctx, key)
	if err == nil {
		rc.Close()
	}
	wantErr(t, fmt.Sprintf("Get(%q)", key), err, store.ErrNotExist)
	_, err = s.Stat(ctx, key)
	wantErr(t, fmt.Sprintf("Stat(%q)", key), err, store.ErrNotExist)
	_, err = s.GetRange(ctx, key, 0, 10)
	wantErr(t, fmt.Sprintf("GetRange(%q, 0, 10)", key), err, store.ErrNotExist)
	_, err = s.GetRange(ctx, key, 0, 0)
	wantErr(t, fmt.Sprintf("GetRange(%q, 0, 0)", key), err, store.ErrNotExist)
}

func list(t *testing.T, s store.Store, prefix string) []store.Info {
	t.Helper()
	var infos []store.Info
	err := s.List(t.Context(), prefix, func(i store.Info) error {
		infos = append(infos, i)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return infos
}

func listKeys(t *testing.T, s store.Store, prefix string) []string {
	t.Helper()
	var keys []string
	for _, i := range list(t, s, prefix) {
		keys = append(keys, i.Key)
	}
	return keys
}

func checkStat(t *testing.T, s store.Store, key string, size int64, before time.Time) store.Info {
	t.Helper()
	info, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if info.Key != key || info.Size != size || info.ETag == "" {
		t.Errorf("Stat(%q) = key %q size %d etag %q; want key %q size %d and an ETag", key, info.Key, info.Size, info.ETag, key, size)
	}
	// Object stores keep their own clocks and may round to seconds.
	if info.ModTime.Before(before.Add(-5*time.Minute)) || info.ModTime.After(time.Now().Add(5*time.Minute)) {
		t.Errorf("Stat(%q).ModTime = %v, want about %v", key, info.ModTime, before)
	}
	return info
}

func testRoundTrip(t *testing.T, s store.Store) {
	for i, tc := range []struct {
		name  string
		size  int
		known bool
	}{
		{"empty", 0, true},
		{"empty-unknown-size", 0, false},
		{"one-byte", 1, true},
		{"small-unknown-size", 1000, false},
		{"large", LargeSize, true},
		{"large-unknown-size", LargeSize, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "roundtrip/" + tc.name + ".bin"
			data := payload(uint64(i), tc.size)
			size := int64(-1)
			if tc.known {
				size = int64(tc.size)
			}
			before := time.Now()
			if err := s.Put(t.Context(), key, onlyReader{bytes.NewReader(data)}, size); err != nil {
				t.Fatalf("Put(%q, %d bytes, size %d): %v", key, tc.size, size, err)
			}
			same(t, "Get", get(t, s, key), data)
			checkStat(t, s, key, int64(tc.size), before)
			if tc.size >= 8<<20+10 {
				// Across the boundary of the first multipart part (8 MiB).
				got, err := s.GetRange(t.Context(), key, 8<<20-5, 10)
				if err != nil {
					t.Fatalf("GetRange: %v", err)
				}
				same(t, "GetRange across 8 MiB", got, data[8<<20-5:8<<20+5])
				got, err = s.GetRange(t.Context(), key, int64(tc.size-3), -1)
				if err != nil {
					t.Fatalf("GetRange: %v", err)
				}
				same(t, "GetRange of the last bytes", got, data[tc.size-3:])
			}
		})
	}
	if got := listKeys(t, s, "roundtrip/"); len(got) != 6 {
		t.Errorf("List(roundtrip/) = %q, want the 6 objects", got)
	}
}

func testOverwrite(t *testing.T, s store.Store) {
	const key = "over/write"
	v1, v2 := payload(1, 100), payload(2, 30)
	put(t, s, key, v1)
	i1 := checkStat(t, s, key, 100, time.Now())
	put(t, s, key, v2)
	same(t, "Get after overwrite", get(t, s, key), v2)
	i2 := checkStat(t, s, key, 30, time.Now())
	if i1.ETag == i2.ETag {
		t.Errorf("ETag %q unchanged by an overwrite with other content", i1.ETag)
	}
	put(t, s, key, nil)
	same(t, "Get after overwrite with nothing", get(t, s, key), nil)
	checkStat(t, s, key, 0, time.Now())
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{key}) {
		t.Errorf("List = %q, want only %q", got, key)
	}
}

func testPutIfAbsent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const key = "state/agent=a/stream=0/00000000000000000001.ckpt"
	v1, v2, v3, v4 := payload(1, 10), payload(2, 20), payload(3, 30), payload(4, 40)
	if err := s.PutIfAbsent(ctx, key, bytes.NewReader(v1), int64(len(v1))); err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	err := s.PutIfAbsent(ctx, key, bytes.NewReader(v2), int64(len(v2)))
	wantErr(t, "second PutIfAbsent", err, store.ErrExists)
	err = s.PutIfAbsent(ctx, key, onlyReader{bytes.NewReader(v2)}, -1)
	wantErr(t, "PutIfAbsent of unknown size", err, store.ErrExists)
	same(t, "Get after refused PutIfAbsent", get(t, s, key), v1)

	put(t, s, key, v3) // Put overwrites regardless
	same(t, "Get after Put", get(t, s, key), v3)
	err = s.PutIfAbsent(ctx, key, bytes.NewReader(v2), int64(len(v2)))
	wantErr(t, "PutIfAbsent over a Put object", err, store.ErrExists)

	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.PutIfAbsent(ctx, key, bytes.NewReader(v4), int64(len(v4))); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
	same(t, "Get after PutIfAbsent", get(t, s, key), v4)

	if err := s.PutIfAbsent(ctx, "state/empty", bytes.NewReader(nil), 0); err != nil {
		t.Fatalf("PutIfAbsent of an empty object: %v", err)
	}
	err = s.PutIfAbsent(ctx, "state/empty", bytes.NewReader(nil), 0)
	wantErr(t, "second PutIfAbsent of an empty object", err, store.ErrExists)
}

func testPutIfAbsentLarge(t *testing.T, s store.Store) {
	ctx := t.Context()
	const key = "large/once"
	v1, v2 := payload(11, LargeSize), payload(12, LargeSize)
	if err := s.PutIfAbsent(ctx, key, onlyReader{bytes.NewReader(v1)}, LargeSize); err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	err := s.PutIfAbsent(ctx, key, onlyReader{bytes.NewReader(v2)}, LargeSize)
	wantErr(t, "second PutIfAbsent", err, store.ErrExists)
	err = s.PutIfAbsent(ctx, key, onlyReader{bytes.NewReader(v2)}, -1)
	wantErr(t, "second PutIfAbsent of unknown size", err, store.ErrExists)
	same(t, "Get", get(t, s, key), v1)
}

// race runs PutIfAbsent of key from n goroutines at once, each with its own
// content, and checks that exactly one wins and its content is stored.
func race(t *testing.T, s store.Store, key string, n, size int, seed uint64) {
	t.Helper()
	ctx := t.Context()
	datas := make([][]byte, n)
	for i := range datas {
		datas[i] = payload(seed+uint64(i), size)
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.PutIfAbsent(ctx, key, onlyReader{bytes.NewReader(datas[i])}, int64(size))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("%s: writers %d and %d both succeeded", key, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrExists):
			t.Errorf("%s: writer %d: %v, want nil or ErrExists", key, i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: no writer succeeded: %v", key, errs)
	}
	same(t, key+" holds the winner's content", get(t, s, key), datas[winner])
}

func testPutIfAbsentConcurrent(t *testing.T, s store.Store) {
	for round := range 5 {
		race(t, s, fmt.Sprintf("lock/%d", round), 8, 1024, uint64(100*round))
	}
}

func testPutIfAbsentConcurrentLarge(t *testing.T, s store.Store) {
	race(t, s, "lock/large", 3, LargeSize, 1000)
}

func stat(t *testing.T, s store.Store, key string) store.Info {
	t.Helper()
	info, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return info
}

func testPutIfMatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	const key = "config/users/admin.json"
	// Same sizes: an ETag must tell versions apart by more than their size.
	v1, v2, v3, v4 := payload(21, 64), payload(22, 64), payload(23, 64), payload(24, 64)

	err := s.PutIfMatch(ctx, key, bytes.NewReader(v1), int64(len(v1)), "0123")
	wantErr(t, "PutIfMatch of a missing object", err, store.ErrPreconditionFailed)
	mustNotExist(t, s, key)
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("a refused PutIfMatch left objects: %q", got)
	}

	put(t, s, key, v1)
	e1 := stat(t, s, key).ETag
	for _, bad := range []string{"", "0123", e1 + "x"} {
		err = s.PutIfMatch(ctx, key, bytes.NewReader(v2), int64(len(v2)), bad)
		wantErr(t, fmt.Sprintf("PutIfMatch with ETag %q", bad), err, store.ErrPreconditionFailed)
	}
	same(t, "Get after refused PutIfMatch", get(t, s, key), v1)

	if err := s.PutIfMatch(ctx, key, bytes.NewReader(v2), int64(len(v2)), e1); err != nil {
		t.Fatalf("PutIfMatch with the current ETag: %v", err)
	}
	same(t, "Get after PutIfMatch", get(t, s, key), v2)
	e2 := stat(t, s, key).ETag
	if e2 == e1 {
		t.Errorf("ETag %q unchanged by PutIfMatch with other content", e2)
	}
	err = s.PutIfMatch(ctx, key, bytes.NewReader(v3), int64(len(v3)), e1)
	wantErr(t, "PutIfMatch with a stale ETag", err, store.ErrPreconditionFailed)
	err = s.PutIfMatch(ctx, key, onlyReader{bytes.NewReader(v3)}, -1, e1)
	wantErr(t, "PutIfMatch of unknown size with a stale ETag", err, store.ErrPreconditionFailed)
	same(t, "Get after a stale PutIfMatch", get(t, s, key), v2)
	if err := s.PutIfMatch(ctx, key, onlyReader{bytes.NewReader(v3)}, -1, e2); err != nil {
		t.Fatalf("PutIfMatch of unknown size: %v", err)
	}
	same(t, "Get after PutIfMatch of unknown size", get(t, s, key), v3)

	// The ETag from List serves as well as the one from Stat.
	infos := list(t, s, key)
	if len(infos) != 1 {
		t.Fatalf("List(%q) = %v", key, infos)
	}
	if err := s.PutIfMatch(ctx, key, bytes.NewReader(v4), int64(len(v4)), infos[0].ETag); err != nil {
		t.Fatalf("PutIfMatch with the ETag from List: %v", err)
	}
	e4 := stat(t, s, key).ETag

	// A body of the wrong size writes nothing.
	err = s.PutIfMatch(ctx, key, bytes.NewReader(v1), int64(len(v1))+1, e4)
	if err == nil {
		t.Error("PutIfMatch with a short body succeeded")
	}
	same(t, "Get after a failed PutIfMatch", get(t, s, key), v4)

	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	err = s.PutIfMatch(ctx, key, bytes.NewReader(v1), int64(len(v1)), e4)
	wantErr(t, "PutIfMatch after Delete", err, store.ErrPreconditionFailed)
	mustNotExist(t, s, key)
}

func testPutIfMatchLarge(t *testing.T, s store.Store) {
	ctx := t.Context()
	const key = "large/update"
	v1, v2 := payload(31, 100), payload(32, LargeSize)
	put(t, s, key, v1)
	e1 := stat(t, s, key).ETag
	err := s.PutIfMatch(ctx, key, onlyReader{bytes.NewReader(v2)}, -1, e1+"0")
	wantErr(t, "large PutIfMatch with a wrong ETag", err, store.ErrPreconditionFailed)
	same(t, "Get after a refused large PutIfMatch", get(t, s, key), v1)
	if err := s.PutIfMatch(ctx, key, onlyReader{bytes.NewReader(v2)}, -1, e1); err != nil {
		t.Fatalf("large PutIfMatch: %v", err)
	}
	same(t, "Get after a large PutIfMatch", get(t, s, key), v2)
}

// testPutIfMatchConcurrent runs read-modify-write increments of one counter
// from several goroutines at once: with PutIfMatch, none is lost.
func testPutIfMatchConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const key = "config/counter.json"
	const workers, each = 6, 5
	put(t, s, key, []byte("0"))
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for range each {
				for attempt := 0; ; attempt++ {
					if attempt == 1000 {
						errs[w] = errors.New("1000 conflicts in a row")
						return
					}
					info, err := s.Stat(ctx, key)
					if err != nil {
						errs[w] = err
						return
					}
					rc, err := s.Get(ctx, key)
					if err != nil {
						errs[w] = err
						return
					}
					b, err := io.ReadAll(rc)
					rc.Close()
					if err != nil {
						errs[w] = err
						return
					}
					var n int
					if _, err := fmt.Sscan(string(b), &n); err != nil {
						errs[w] = fmt.Errorf("counter %q: %v", b, err)
						return
					}
					next := []byte(fmt.Sprint(n + 1))
					err = s.PutIfMatch(ctx, key, bytes.NewReader(next), int64(len(next)), info.ETag)
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrPreconditionFailed) {
						errs[w] = err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", w, err)
		}
	}
	if got, want := string(get(t, s, key)), fmt.Sprint(workers*each); got != want {
		t.Errorf("counter = %s after %d increments: updates were lost", got, workers*each)
	}
}

func testMissing(t *testing.T, s store.Store) {
	mustNotExist(t, s, "missing")
	put(t, s, "dir/obj", []byte("x"))
	mustNotExist(t, s, "dir/missing")
	mustNotExist(t, s, "dir")           // a prefix of an object is no object
	mustNotExist(t, s, "dir/obj/child") // nor is a key below an object
	mustNotExist(t, s, "dir/ob")
}

func testRange(t *testing.T, s store.Store) {
	ctx := t.Context()
	data := payload(7, 1000)
	put(t, s, "range", data)
	for _, tc := range []struct {
		off, n int64
		want   []byte
	}{
		{0, 10, data[:10]},
		{100, 50, data[100:150]}, // middle
		{990, -1, data[990:]},    // to the end
		{0, -1, data},            // everything
		{990, 100, data[990:]},   // past the end: cut short
		{0, 5000, data},          // longer than the object
		{999, 1, data[999:]},     // last byte
		{1000, 10, nil},          // at the end
		{1000, -1, nil},          // at the end, to the end
		{5000, 10, nil},          // past the end
		{10, 0, nil},             // nothing
	} {
		got, err := s.GetRange(ctx, "range", tc.off, tc.n)
		if err != nil {
			t.Errorf("GetRange(%d, %d): %v", tc.off, tc.n, err)
			continue
		}
		same(t, fmt.Sprintf("GetRange(%d, %d)", tc.off, tc.n), got, tc.want)
	}
	put(t, s, "range-empty", nil)
	for _, n := range []int64{-1, 0, 10} {
		got, err := s.GetRange(ctx, "range-empty", 0, n)
		if err != nil || len(got) != 0 {
			t.Errorf("GetRange(empty object, 0, %d) = %d bytes, %v; want none", n, len(got), err)
		}
	}
	if _, err := s.GetRange(ctx, "range", -1, 10); err == nil || errors.Is(err, store.ErrNotExist) {
		t.Errorf("GetRange with a negative offset: error %v, want an invalid-range error", err)
	}
}

func testList(t *testing.T, s store.Store) {
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Fatalf("List of an empty store = %q", got)
	}
	// Chosen so that directory order differs from key order: '-' and '.'
	// sort before '/', '0' and letters after it.
	keys := []string{
		"a-b",
		"a/b-",
		"a/b.txt",
		"a/b/c",
		"a/b/d",
		"a/bc",
		"a0",
		"ab",
		"b/x",
		"lake/http/dt=2024-01-01/hour=00/part-0.parquet",
		"lake/http/dt=2024-01-01/hour=00/part-1.parquet",
		"lake/http/dt=2024-01-01/hour=01/part-0.parquet",
		"lake/http/dt=2024-01-02/hour=00/part-0.parquet",
		"lake/tcp/dt=2024-01-01/hour=00/part-0.parquet",
	}
	sizes := map[string]int{}
	before := time.Now()
	for i, k := range slices.Backward(keys) { // insertion order must not matter
		sizes[k] = i + 1
		put(t, s, k, payload(uint64(i), i+1))
	}
	all := list(t, s, "")
	var got []string
	for _, info := range all {
		got = append(got, info.Key)
		if info.Size != int64(sizes[info.Key]) || info.ETag == "" ||
			info.ModTime.Before(before.Add(-5*time.Minute)) || info.ModTime.After(time.Now().Add(5*time.Minute)) {
			t.Errorf("List: %+v, want size %d, an ETag and a modification time about %v", info, sizes[info.Key], before)
		}
	}
	if !slices.Equal(got, keys) {
		t.Errorf("List(\"\") =\n  %q\nwant\n  %q", got, keys)
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"a", []string{"a-b", "a/b-", "a/b.txt", "a/b/c", "a/b/d", "a/bc", "a0", "ab"}},
		{"a/", []string{"a/b-", "a/b.txt", "a/b/c", "a/b/d", "a/bc"}},
		{"a/b", []string{"a/b-", "a/b.txt", "a/b/c", "a/b/d", "a/bc"}},
		{"a/b/", []string{"a/b/c", "a/b/d"}},
		{"a/b/c", []string{"a/b/c"}},
		{"a/b/c/", nil},
		{"a-", []string{"a-b"}},
		{"b", []string{"b/x"}},
		{"zzz", nil},
		{"lake/http/dt=2024-01-01/", []string{
			"lake/http/dt=2024-01-01/hour=00/part-0.parquet",
			"lake/http/dt=2024-01-01/hour=00/part-1.parquet",
			"lake/http/dt=2024-01-01/hour=01/part-0.parquet",
		}},
		{"lake/http/dt=2024-01-0", []string{
			"lake/http/dt=2024-01-01/hour=00/part-0.parquet",
			"lake/http/dt=2024-01-01/hour=00/part-1.parquet",
			"lake/http/dt=2024-01-01/hour=01/part-0.parquet",
			"lake/http/dt=2024-01-02/hour=00/part-0.parquet",
		}},
		{"lake/http/dt=2024-01-01/hour=00/part-1", []string{"lake/http/dt=2024-01-01/hour=00/part-1.parquet"}},
	} {
		if got := listKeys(t, s, tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) =\n  %q\nwant\n  %q", tc.prefix, got, tc.want)
		}
	}
	// ListAfter: the keys under prefix after a key, which need not exist.
	for _, tc := range []struct {
		prefix, after string
		want          []string
	}{
		{"a/", "a/b.txt", []string{"a/b/c", "a/b/d", "a/bc"}},
		{"a/", "a/b/c0", []string{"a/b/d", "a/bc"}},
		{"a/", "", []string{"a/b-", "a/b.txt", "a/b/c", "a/b/d", "a/bc"}},
		{"a/", "a/bc", nil},
		{"lake/http/", "lake/http/dt=2024-01-01/hour=00/part-1.parquet", []string{
			"lake/http/dt=2024-01-01/hour=01/part-0.parquet",
			"lake/http/dt=2024-01-02/hour=00/part-0.parquet",
		}},
		{"lake/http/", "lake/http/dt=2024-01-02", []string{"lake/http/dt=2024-01-02/hour=00/part-0.parquet"}},
	} {
		var got []string
		err := store.ListAfter(t.Context(), s, tc.prefix, tc.after, func(info store.Info) error {
			got = append(got, info.Key)
			return nil
		})
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ListAfter(%q, %q) =\n  %q (%v)\nwant\n  %q", tc.prefix, tc.after, got, err, tc.want)
		}
	}
}

func testListStop(t *testing.T, s store.Store) {
	for _, k := range []string{"s/1", "s/2", "s/3"} {
		put(t, s, k, []byte(k))
	}
	errStop := errors.New("stop here")
	calls := 0
	err := s.List(t.Context(), "s/", func(store.Info) error {
		calls++
		return errStop
	})
	wantErr(t, "List with a failing callback", err, errStop)
	if calls != 1 {
		t.Errorf("callback called %d times after failing, want 1", calls)
	}
	// The callback may use the store.
	err = s.List(t.Context(), "s/", func(i store.Info) error {
		same(t, "Get from a List callback", get(t, s, i.Key), []byte(i.Key))
		return nil
	})
	if err != nil {
		t.Errorf("List: %v", err)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, "del/k", []byte("v"))
	put(t, s, "del/keep", []byte("w"))
	if err := s.Delete(ctx, "del/k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustNotExist(t, s, "del/k")
	if got := listKeys(t, s, "del/"); !slices.Equal(got, []string{"del/keep"}) {
		t.Errorf("List after Delete = %q", got)
	}
	if err := s.Delete(ctx, "del/k"); err != nil {
		t.Errorf("Delete again: %v", err)
	}
	if err := s.Delete(ctx, "never/was"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	// Deleting a prefix of objects deletes nothing.
	if err := s.Delete(ctx, "del"); err != nil {
		t.Errorf("Delete of a prefix: %v", err)
	}
	same(t, "Get after Delete of its prefix", get(t, s, "del/keep"), []byte("w"))

	// Once d/e/f is gone, d/e can be an object.
	put(t, s, "d/e/f", []byte("f"))
	if err := s.Delete(ctx, "d/e/f"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	put(t, s, "d/e", []byte("e"))
	same(t, "Get(d/e)", get(t, s, "d/e"), []byte("e"))
	if got := listKeys(t, s, "d/"); !slices.Equal(got, []string{"d/e"}) {
		t.Errorf("List(d/) = %q, want [d/e]", got)
	}
}

// Keys is the set of unusual keys the suite round-trips; exported for
// implementation tests that check them against other tools.
var Keys = []string{
	"lake/http/dt=2024-01-01/hour=00/part 0.parquet",
	"sp ace/a+b%20c&d?e#f;g,h:i@j$k!l'm(n)o*p~q=r",
	"ünïcödé/日本語/ключ-😀.bin",
	".hidden/-dash/_under.x",
	strings.Repeat("a", 250) + "/" + strings.Repeat("b", 250) + "/" + strings.Repeat("c", 250) + "/" + strings.Repeat("d", 250),
}

func testKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, k := range Keys {
		put(t, s, k, payload(uint64(i), 10+i))
		same(t, fmt.Sprintf("Get(%q)", k), get(t, s, k), payload(uint64(i), 10+i))
		checkStat(t, s, k, int64(10+i), time.Now())
		got, err := s.GetRange(ctx, k, 2, 3)
		if err != nil {
			t.Errorf("GetRange(%q): %v", k, err)
		}
		same(t, fmt.Sprintf("GetRange(%q)", k), got, payload(uint64(i), 10+i)[2:5])
	}
	want := slices.Sorted(slices.Values(Keys))
	if got := listKeys(t, s, ""); !slices.Equal(got, want) {
		t.Errorf("List =\n  %q\nwant\n  %q", got, want)
	}
	if got := listKeys(t, s, "ünïcödé/日本"); !slices.Equal(got, []string{Keys[2]}) {
		t.Errorf("List(ünïcödé/日本) = %q", got)
	}
	if got := listKeys(t, s, "sp ace/a+b%20c"); !slices.Equal(got, []string{Keys[1]}) {
		t.Errorf("List(sp ace/a+b%%20c) = %q", got)
	}
	for _, k := range Keys {
		if err := s.PutIfAbsent(ctx, k, bytes.NewReader(nil), 0); !errors.Is(err, store.ErrExists) {
			t.Errorf("PutIfAbsent(%q): %v, want ErrExists", k, err)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Errorf("Delete(%q): %v", k, err)
		}
		mustNotExist(t, s, k)
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("List after deleting everything = %q", got)
	}
}

func testInvalidKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, "a/b", []byte("x"))
	for _, key := range []string{
		"", "/abs", "a//b", "a/", "./a", "a/./b", "../a", "a/..", "a/../b", "..",
		"a\x00b", "bad\xffutf8", strings.Repeat("k", 1025), "a/.flowlake-tmp-1",
	} {
		what := func(op string) string { return fmt.Sprintf("%s(%q)", op, key) }
		wantErr(t, what("Put"), s.Put(ctx, key, bytes.NewReader(nil), 0), store.ErrInvalidKey)
		wantErr(t, what("PutIfAbsent"), s.PutIfAbsent(ctx, key, bytes.NewReader(nil), 0), store.ErrInvalidKey)
		rc, err := s.Get(ctx, key)
		if err == nil {
			rc.Close()
		}
		wantErr(t, what("Get"), err, store.ErrInvalidKey)
		_, err = s.GetRange(ctx, key, 0, 1)
		wantErr(t, what("GetRange"), err, store.ErrInvalidKey)
		_, err = s.Stat(ctx, key)
		wantErr(t, what("Stat"), err, store.ErrInvalidKey)
		wantErr(t, what("Delete"), s.Delete(ctx, key), store.ErrInvalidKey)
	}
	for _, prefix := range []string{"../", "a//", "/a", "a/../", "./", "x\x00"} {
		err := s.List(ctx, prefix, func(store.Info) error { return nil })
		wantErr(t, fmt.Sprintf("List(%q)", prefix), err, store.ErrInvalidKey)
	}
	same(t, "Get(a/b) after the refused calls", get(t, s, "a/b"), []byte("x"))
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"a/b"}) {
		t.Errorf("List = %q, want [a/b]", got)
	}
}

func testBodySize(t *testing.T, s store.Store) {
	ctx := t.Context()
	data := payload(5, 100)
	for _, w := range []struct {
		name string
		fn   func(context.Context, string, io.Reader, int64) error
	}{{"Put", s.Put}, {"PutIfAbsent", s.PutIfAbsent}} {
		key := "size/" + w.name
		if err := w.fn(ctx, key, onlyReader{bytes.NewReader(data[:50])}, 100); err == nil {
			t.Errorf("%s of 50 bytes declared as 100 succeeded", w.name)
		}
		mustNotExist(t, s, key)
		if err := w.fn(ctx, key, onlyReader{bytes.NewReader(data)}, 50); err == nil {
			t.Errorf("%s of 100 bytes declared as 50 succeeded", w.name)
		}
		mustNotExist(t, s, key)
		if err := w.fn(ctx, key, onlyReader{bytes.NewReader(data)}, 0); err == nil {
			t.Errorf("%s of 100 bytes declared as 0 succeeded", w.name)
		}
		mustNotExist(t, s, key)
		if err := w.fn(ctx, key, bytes.NewReader(data), -2); err == nil {
			t.Errorf("%s with size -2 succeeded", w.name)
		}
		mustNotExist(t, s, key)
	}
	// Too short a large body.
	large := payload(6, LargeSize)
	if err := s.Put(ctx, "size/large", onlyReader{bytes.NewReader(large[:LargeSize-1])}, LargeSize); err == nil {
		t.Errorf("Put of %d bytes declared as %d succeeded", LargeSize-1, LargeSize)
	}
	mustNotExist(t, s, "size/large")
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("List after refused writes = %q", got)
	}
}

// failingReader yields n bytes of data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func testFailedWrite(t *testing.T, s store.Store) {
	ctx := t.Context()
	errBoom := errors.New("boom")
	old := payload(8, 100)
	for _, tc := range []struct {
		name string
		size int
	}{{"small", 1000}, {"large", LargeSize}} {
		key := "failed/" + tc.name
		put(t, s, key, old)
		for _, size := range []int64{int64(tc.size), -1} {
			r := &failingReader{data: payload(9, tc.size-100), err: errBoom}
			err := s.Put(ctx, key, r, size)
			wantErr(t, fmt.Sprintf("Put(%s) from a failing reader, size %d", key, size), err, errBoom)
			same(t, "Get after the failed Put", get(t, s, key), old)
			r = &failingReader{data: payload(9, tc.size-100), err: errBoom}
			err = s.PutIfAbsent(ctx, key+"-new", r, size)
			wantErr(t, fmt.Sprintf("PutIfAbsent(%s-new) from a failing reader, size %d", key, size), err, errBoom)
			mustNotExist(t, s, key+"-new")
		}
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"failed/large", "failed/small"}) {
		t.Errorf("List after failed writes = %q", got)
	}
}

func testCanceled(t *testing.T, s store.Store) {
	put(t, s, "c/k", []byte("v"))
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		ctx := c.ctx
		wantErr(t, "Put", s.Put(ctx, "c/new", bytes.NewReader([]byte("x")), 1), c.want)
		wantErr(t, "PutIfAbsent", s.PutIfAbsent(ctx, "c/new", bytes.NewReader([]byte("x")), 1), c.want)
		rc, err := s.Get(ctx, "c/k")
		if err == nil {
			rc.Close()
		}
		wantErr(t, "Get", err, c.want)
		_, err = s.GetRange(ctx, "c/k", 0, 1)
		wantErr(t, "GetRange", err, c.want)
		_, err = s.Stat(ctx, "c/k")
		wantErr(t, "Stat", err, c.want)
		wantErr(t, "List", s.List(ctx, "", func(store.Info) error { return nil }), c.want)
		wantErr(t, "Delete", s.Delete(ctx, "c/k"), c.want)
	}
	mustNotExist(t, s, "c/new")
	same(t, "Get after canceled calls", get(t, s, "c/k"), []byte("v"))
}

// cancelingReader cancels its context after yielding half of its data, and
// then keeps yielding: a store must notice the cancellation by itself.
type cancelingReader struct {
	data   []byte
	half   int
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	if len(c.data) <= c.half {
		c.cancel()
	}
	p = p[:min(len(p), 64<<10)]
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

func testCanceledMidPut(t *testing.T, s store.Store) {
	for _, size := range []int{1 << 20, LargeSize} {
		for _, ifAbsent := range []bool{false, true} {
			key := fmt.Sprintf("mid/%d-%v", size, ifAbsent)
			ctx, cancel := context.WithCancel(t.Context())
			r := &cancelingReader{data: payload(10, size), half: size / 2, cancel: cancel}
			var err error
			if ifAbsent {
				err = s.PutIfAbsent(ctx, key, r, int64(size))
			} else {
				err = s.Put(ctx, key, r, int64(size))
			}
			cancel()
			wantErr(t, fmt.Sprintf("write of %s canceled midway", key), err, context.Canceled)
			mustNotExist(t, s, key)
		}
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	// Writers share directories that keep emptying and filling, while
	// readers list them.
	ctx := t.Context()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				key := fmt.Sprintf("conc/d%d/g%d", i%3, g)
				data := payload(uint64(g*100+i), 64+i)
				if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Errorf("Put(%q): %v", key, err)
					return
				}
				rc, err := s.Get(ctx, key)
				if err != nil {
					t.Errorf("Get(%q): %v", key, err)
					return
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("Get(%q) = %d bytes, %v; want its own %d bytes", key, len(got), err, len(data))
				}
				if err := s.Delete(ctx, key); err != nil {
					t.Errorf("Delete(%q): %v", key, err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := s.List(ctx, "conc/", func(store.Info) error { return nil }); err != nil {
				t.Errorf("List: %v", err)
				return
			}
		}
	})
	wg.Wait()
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("List after everything was deleted = %q", got)
	}
}
