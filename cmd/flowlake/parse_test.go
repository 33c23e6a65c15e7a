package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	_ "github.com/marcboeker/go-duckdb"
	"github.com/parquet-go/parquet-go"

	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/miniotest"
	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/schema"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &out, &errb)
	return out.String() + errb.String(), err
}

// zeekConn is one TCP line of Zeek's conn.log baseline.
type zeekConn struct {
	orig, resp           string
	origBytes, respBytes string
	origPkts, respPkts   string
}

func zeekTCP(t *testing.T, path string) []zeekConn {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []zeekConn
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.Split(sc.Text(), "\t")
		if len(l) < 19 || strings.HasPrefix(l[0], "#") || l[6] != "tcp" {
			continue
		}
		out = append(out, zeekConn{orig: l[2] + ":" + l[3], resp: l[4] + ":" + l[5], origBytes: l[9], respBytes: l[10], origPkts: l[16], respPkts: l[18]})
	}
	return out
}

// The CLI writes a lake that DuckDB reads with hive partitioning, and the
// values agree with Zeek's independent baseline for the same capture.
func TestParseLakeReadByDuckDB(t *testing.T) {
	lake := t.TempDir()
	out, err := runCLI(t, "parse", "--lake", lake, "--agent", "probe", testcap.Path(t, "zeek-wikipedia.pcap"))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	for _, want := range []string{"TCP sessions    10", "HTTP exchanges  15", "MB/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := func(table string) string {
		return fmt.Sprintf("read_parquet('%s/lake/%s/*/*/*.parquet', hive_partitioning=true)", lake, table)
	}

	// http: one exchange checked field by field against Zeek's http.log.
	var n, n304 int
	if err := db.QueryRow("SELECT count(*), count(*) FILTER (WHERE status = 304) FROM "+glob("http")).Scan(&n, &n304); err != nil {
		t.Fatal(err)
	}
	if n != 15 || n304 != 15 {
		t.Errorf("http rows %d, 304s %d; want 15 and 15", n, n304)
	}
	var (
		client, server, method, host, uri, path, version, reason, ua, agent, dt, serverName, tsType string
		cport, sport, hour                                                                          int
		complete, tls                                                                               bool
		dur                                                                                         int64
	)
	err = db.QueryRow(`SELECT client_ip, client_port, server_ip, server_port, method, host, uri, path, version, reason, user_agent,
			agent, CAST(dt AS VARCHAR), CAST(hour AS INTEGER), server_name, complete, tls, duration_us, typeof(ts)
		FROM `+glob("http")+` WHERE uri = '/skins-1.5/monobook/main.css'`).Scan(
		&client, &cport, &server, &sport, &method, &host, &uri, &path, &version, &reason, &ua, &agent, &dt, &hour, &serverName, &complete, &tls, &dur, &tsType)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s:%d %s:%d %s %s %s %s %s %s|%s|%s %s %d %s %v %v %s", client, cport, server, sport, method, host, uri, path, version, reason, ua, agent, dt, hour, serverName, complete, tls, tsType)
	want := "141.142.220.118:48649 208.80.152.118:80 GET bits.wikimedia.org /skins-1.5/monobook/main.css /skins-1.5/monobook/main.css HTTP/1.1 Not Modified|" +
		"Mozilla/5.0 (X11; U; Linux x86_64; en-US; rv:1.9.2.15) Gecko/20110303 Ubuntu/10.04 (lucid) Firefox/3.6.15|probe 2011-03-18 19 bits.wikimedia.org true false TIMESTAMP WITH TIME ZONE"
	if got != want {
		t.Errorf("http row\n got %s\nwant %s", got, want)
	}
	if dur <= 0 || dur > 1_000_000 {
		t.Errorf("duration_us %d", dur)
	}

	// tcp: every connection's packets and payload bytes per direction equal
	// Zeek's conn.log.
	zc := zeekTCP(t, testcap.Path(t, "zeek-wikipedia.expected.conn.log"))
	if len(zc) != 10 {
		t.Fatalf("zeek baseline has %d tcp rows", len(zc))
	}
	for _, z := range zc {
		var pc, ps, bc, bs int64
		err := db.QueryRow(`SELECT packets_c2s, packets_s2c, bytes_c2s, bytes_s2c FROM `+glob("tcp")+`
			WHERE client_ip || ':' || client_port = ? AND server_ip || ':' || server_port = ?`, z.orig, z.resp).Scan(&pc, &ps, &bc, &bs)
		if err != nil {
			t.Errorf("tcp %s -> %s: %v", z.orig, z.resp, err)
			continue
		}
		zb := func(s string) string {
			if s == "-" {
				return "0"
			}
			return s
		}
		if g, w := fmt.Sprintf("%d/%d %d/%d", pc, ps, bc, bs), fmt.Sprintf("%s/%s %s/%s", z.origPkts, z.respPkts, zb(z.origBytes), zb(z.respBytes)); g != w {
			t.Errorf("tcp %s -> %s: pkts/bytes %s, zeek %s", z.orig, z.resp, g, w)
		}
	}

	// dns: the names queried are tshark's.
	rows, err := db.Query("SELECT DISTINCT query FROM " + glob("dns") + " WHERE query <> ''")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		names = append(names, s)
	}
	rows.Close()
	sort.Strings(names)
	truth := testcap.LoadTruth(t, "zeek-wikipedia.pcap").DNSQueryNames
	sort.Strings(truth)
	if strings.Join(names, ",") != strings.Join(truth, ",") {
		t.Errorf("dns names\n got %v\nwant %v", names, truth)
	}
	var answer string
	if err := db.QueryRow(`SELECT answers[2] FROM ` + glob("dns") + ` WHERE query = 'upload.wikimedia.org' AND qtype = 'A' LIMIT 1`).Scan(&answer); err != nil || answer != "A 208.80.152.3" {
		t.Errorf("dns answer %q %v", answer, err)
	}

	// parse_status: one row for the file, status ok.
	var st string
	var pk int64
	if err := db.QueryRow("SELECT status, packets FROM "+glob("parse_status")).Scan(&st, &pk); err != nil || st != "ok" || pk != 136 {
		t.Errorf("parse_status %s %d %v", st, pk, err)
	}

	// Parsing the same input again replaces the files instead of adding.
	before, _ := filepath.Glob(filepath.Join(lake, "lake", "*", "*", "*", "*.parquet"))
	if out, err := runCLI(t, "parse", "--lake", lake, "--agent", "probe", testcap.Path(t, "zeek-wikipedia.pcap")); err != nil {
		t.Fatalf("second parse: %v\n%s", err, out)
	}
	after, _ := filepath.Glob(filepath.Join(lake, "lake", "*", "*", "*", "*.parquet"))
	if len(before) != len(after) {
		t.Errorf("re-parse changed the file count %d -> %d", len(before), len(after))
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pcap")
	os.WriteFile(garbage, []byte("not a capture"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"parse"}, "no capture files given"},
		{[]string{"parse", "--lake", dir, filepath.Join(dir, "nope.pcap")}, "no such file"},
		{[]string{"parse", "--lake", dir, dir}, "is a directory"},
		{[]string{"parse", "--lake", dir, "--keylog", filepath.Join(dir, "nokeys"), garbage}, "key log"},
		{[]string{"parse", "--lake", dir, garbage, testcap.Path(t, "zeek-http-get.pcap")}, "1 of 2 files could not be read to the end"},
		{[]string{"parse", "--bogus"}, "flag provided but not defined"},
		{[]string{"frobnicate"}, "unknown command"},
	}
	for _, c := range cases {
		out, err := runCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error()+out, c.want) {
			t.Errorf("%v: err %v, want %q\n%s", c.args, err, c.want, out)
		}
	}
	// The good file after the garbage was still parsed.
	rows, _ := filepath.Glob(filepath.Join(dir, "lake", "http", "*", "*", "*.parquet"))
	if len(rows) == 0 {
		t.Error("the readable file's rows were not written")
	}
}

// flowlake parse --lake s3://… writes the same lake to a real MinIO, and
// wrong credentials fail with a clear message.
func TestParseToS3(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	url := "s3://" + srv.Bucket + "/team-a"
	out, err := runCLI(t, "parse", "--lake", url, "--agent", "probe", testcap.Path(t, "zeek-wikipedia.pcap"))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	if !strings.Contains(out, "HTTP exchanges  15") || !strings.Contains(out, url+"/lake/http/*/*/*.parquet") {
		t.Errorf("summary:\n%s", out)
	}
	st, err := store.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	var httpFiles []string
	st.List(t.Context(), "lake/http/", func(i store.Info) error { httpFiles = append(httpFiles, i.Key); return nil })
	if len(httpFiles) != 1 || !strings.HasPrefix(httpFiles[0], "lake/http/dt=2011-03-18/hour=19/parse-") {
		t.Fatalf("http objects %v", httpFiles)
	}
	b, err := st.GetRange(t.Context(), httpFiles[0], 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parquet.Read[schema.HTTP](bytes.NewReader(b), int64(len(b)))
	if err != nil || len(rows) != 15 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}

	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	_, err = runCLI(t, "parse", "--lake", url, testcap.Path(t, "zeek-wikipedia.pcap"))
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("wrong credentials: %v", err)
	}
}
