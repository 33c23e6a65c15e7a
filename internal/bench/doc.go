// Package bench is flowlake's comparative benchmark harness: it times
// `flowlake parse` against the tools people reach for today on the same
// captures — tshark extracting HTTP requests and tcpflow reassembling TCP
// streams — each pinned to one CPU core, and reports wall time, throughput
// (capture bytes per second), peak resident memory and the ratio to flowlake.
//
// The comparison itself is TestCompare in compare_test.go, skipped unless
// FLOWLAKE_BENCH=1 (`make bench-compare`, see bench.mk). It runs on two
// captures: a synthetic one that mkcapture.sh records from nginx and wrk in
// a pair of private network namespaces (160 MB by default, cached under
// /tmp/flowlake-bench/), and the shared real-world capture
// shared/testdata/pcaps/bench-mixed-web-24mb.pcap. Timings are printed and
// written as Markdown, never asserted. README.md explains how to read them.
//
// The package also holds the small pieces the test is built from:
// measuring a child process (Measure), summarising repeated runs (Row),
// rendering the tables (Report) and counting what a tool produced
// (CountParquetRows, CountFiles, LineCounter).
package bench
