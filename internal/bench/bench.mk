# Comparative benchmark: flowlake parse vs tshark vs tcpflow (see internal/bench/README.md).
# Included from the top-level Makefile:   include internal/bench/bench.mk
#
#   make bench-capture   make (or reuse) the synthetic capture; needs root the first time
#   make bench-compare   time the three tools on the synthetic and the real-world capture
#
# Settings come from the environment or the make command line, e.g.
#   make bench-compare BENCH_RUNS=5 BENCH_CAPTURE_MB=400 BENCH_OUT=/tmp/results.md

# This file's directory, taken before any later include changes MAKEFILE_LIST.
BENCH_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
GO ?= go
# Included first, this file must not make bench-capture the default goal.
bench_default_goal := $(.DEFAULT_GOAL)

.PHONY: bench-capture bench-compare

bench-capture:
	bash $(BENCH_DIR)/mkcapture.sh

# -count=1: timings must be measured, never replayed from the go test cache.
bench-compare:
	FLOWLAKE_BENCH=1 $(GO) test -count=1 -run TestCompare -v -timeout 60m ./$(BENCH_DIR)/

.DEFAULT_GOAL := $(bench_default_goal)
