package query

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/auth"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	lakequery "github.com/flowlake/flowlake/internal/query"
	"github.com/flowlake/flowlake/internal/store"
)

// TestLoad is the load test (make load-test; not run by CI): many
// concurrent clients on loopback call the data routes of a server over a
// lake of 5,000+ exchanges of two agents, for FLOWLAKE_LOAD_TEST (a
// duration, e.g. 30s), as users of different teams. It prints requests per
// second and latency percentiles per route; it fails only on answers other
// than 200.
func TestLoad(t *testing.T) {
	v := os.Getenv("FLOWLAKE_LOAD_TEST")
	if v == "" {
		t.Skip("the load test runs with FLOWLAKE_LOAD_TEST=<duration> (make load-test)")
	}
	dur, err := time.ParseDuration(v)
	if err != nil || dur <= 0 {
		t.Fatalf("FLOWLAKE_LOAD_TEST=%q: want a duration such as 30s", v)
	}
	clients := 64
	ctx := t.Context()

	st, err := store.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var lo, hi time.Time // the lake's time range
	p := pipeline.New(pipeline.Config{Store: st, WaitPredecessor: time.Second})
	for agent, capture := range map[string]string{"a": "bench-mixed-web-24mb.pcap", "b": "zeek-http-1000-requests-one-dropped-response.pcap"} {
		segs := pipelinetest.CutAs(t, agent, capture, 8<<20)
		pipelinetest.Upload(t, st, segs)
		for _, s := range segs {
			if err := p.Ingest(ctx, s.Key); err != nil {
				t.Fatal(err)
			}
			first, last := time.Unix(0, s.Meta.FirstTS), time.Unix(0, s.Meta.LastTS)
			if lo.IsZero() || first.Before(lo) {
				lo = first
			}
			if last.After(hi) {
				hi = last
			}
		}
		if err := p.FlushStream(ctx, keys.Stream{Agent: agent}, uint64(len(segs)-1)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("lake built in %v", time.Since(start).Round(time.Millisecond))

	svc, err := auth.New(ctx, auth.Config{Store: st, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := lakequery.New(st, lakequery.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Engine: eng, Auth: svc})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	if _, _, err := svc.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	for team, agent := range map[string]string{"red": "a", "blue": "b"} {
		if _, err := svc.CreateTeam(ctx, team, []string{agent}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []auth.NewUser{
		{Username: "alice", Password: "alice-password", Role: auth.RoleAnalyst, Teams: []string{"red"}},
		{Username: "bob", Password: "bob-password", Role: auth.RoleViewer, Teams: []string{"blue"}},
	} {
		if _, err := svc.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	for _, u := range []string{"admin", "alice", "bob"} {
		sess, err := svc.Login(ctx, u, u+"-password", "")
		if err != nil {
			t.Fatal(err)
		}
		tokens[u] = sess.Token
	}
	// The window of the whole lake, and ids for detail requests.
	from, to := lo.Add(-time.Minute).UTC().Truncate(time.Second), hi.Add(time.Minute).UTC().Truncate(time.Second)
	win := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}.Encode()
	idsByAgent := map[string][]string{}
	exchanges := 0
	for _, agent := range []string{"a", "b"} {
		req := lakequery.Request{From: from, To: to, Limit: 1000, Scope: []string{agent}}
		for {
			page, err := eng.Communications(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Items {
				// The engine looks an id up until now + 24 h only; part of
				// the bench capture is dated 2029.
				if it.TS.Before(time.Now()) {
					idsByAgent[agent] = append(idsByAgent[agent], it.ID)
				}
				exchanges++
			}
			if page.Next == "" {
				break
			}
			req.Cursor = page.Next
		}
		if len(idsByAgent[agent]) == 0 {
			t.Fatalf("no exchanges of agent %s in the lake", agent)
		}
	}

	type target struct {
		name string
		path func(r *rand.Rand, user string) string
	}
	targets := []target{
		{"map", func(*rand.Rand, string) string { return "/api/v1/map?" + win }},
		{"timeline", func(*rand.Rand, string) string { return "/api/v1/timeline?" + win }},
		{"communications", func(*rand.Rand, string) string { return "/api/v1/communications?limit=100&" + win }},
		{"communications?q", func(*rand.Rand, string) string {
			return "/api/v1/communications?limit=100&" + win + "&q=" + url.QueryEscape("status >= 400 or method = POST")
		}},
		{"detail", func(r *rand.Rand, user string) string {
			ids := idsByAgent["a"]
			if user == "bob" {
				ids = idsByAgent["b"]
			}
			return "/api/v1/communications/" + ids[r.IntN(len(ids))]
		}},
		{"sequence", func(*rand.Rand, string) string { return "/api/v1/sequence?limit=200&" + win }},
		{"status", func(*rand.Rand, string) string { return "/api/v1/status?" + win }},
		// No query: the cost of HTTP, token check and principal alone.
		{"auth/me", func(*rand.Rand, string) string { return "/api/v1/auth/me" }},
	}
	users := []string{"admin", "alice", "alice", "bob"}

	type sample struct {
		target int
		d      time.Duration
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	client := &http.Client{Transport: tr}
	lctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var mu sync.Mutex
	var samples []sample
	var failures []string
	var wg sync.WaitGroup
	began := time.Now()
	for c := range clients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), 7))
			var mine []sample
			for lctx.Err() == nil {
				ti := r.IntN(len(targets))
				user := users[r.IntN(len(users))]
				req, _ := http.NewRequestWithContext(lctx, "GET", hs.URL+targets[ti].path(r, user), nil)
				req.Header.Set("Authorization", "Bearer "+tokens[user])
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if lctx.Err() != nil {
						break
					}
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				if resp.StatusCode != 200 && lctx.Err() == nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s as %s: %d (%s)", targets[ti].name, user, resp.StatusCode, req.URL.RequestURI()))
					mu.Unlock()
					continue
				}
				if lctx.Err() == nil {
					mine = append(mine, sample{ti, d})
				}
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	if len(failures) > 0 {
		t.Errorf("%d failed requests, first: %s", len(failures), failures[0])
		// Asked again without load?
		for _, f := range failures[:min(len(failures), 5)] {
			i, j := strings.LastIndexByte(f, '('), strings.LastIndexByte(f, ')')
			if i < 0 || j < i {
				continue
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+f[i+1:j], nil)
			req.Header.Set("Authorization", "Bearer "+tokens["admin"])
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				t.Logf("again, alone, as admin: %s: %d", f[i+1:j], resp.StatusCode)
			}
		}
	}
	pct := func(ds []time.Duration, q float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		return ds[min(len(ds)-1, int(q*float64(len(ds))))]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "load test: %d clients, %v, %d exchanges in the lake (agents a, b), GOMAXPROCS %d\n",
		clients, elapsed.Round(time.Millisecond), exchanges, runtime.GOMAXPROCS(0))
	fmt.Fprintf(&b, "%-18s %8s %8s %9s %9s %9s %9s\n", "route", "requests", "req/s", "p50", "p90", "p99", "max")
	line := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		fmt.Fprintf(&b, "%-18s %8d %8.1f %9v %9v %9v %9v\n", name, len(ds), float64(len(ds))/elapsed.Seconds(),
			pct(ds, .50).Round(10*time.Microsecond), pct(ds, .90).Round(10*time.Microsecond),
			pct(ds, .99).Round(10*time.Microsecond), pct(ds, 1).Round(10*time.Microsecond))
	}
	var total []time.Duration
	for ti, tg := range targets {
		var ds []time.Duration
		for _, s := range samples {
			if s.target == ti {
				ds = append(ds, s.d)
			}
		}
		total = append(total, ds...)
		line(tg.name, ds)
	}
	line("all", total)
	fmt.Print(b.String())
	t.Log("\n" + b.String())
}
