# flowlake — see README.md. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/flowlake
LAKE ?= ./flowlake-data
STATICCHECK_VERSION := v0.8.2
GOBIN := $(shell $(GO) env GOPATH)/bin
# Debian packages the tests use as references (installed when root and missing).
APT_TOOLS := tshark:tshark tcpflow:tcpflow tcpdump:tcpdump editcap:wireshark-common nginx:nginx wrk:wrk ethtool:ethtool \
  clang:clang llvm-strip:llvm bpftool:bpftool /usr/include/bpf/bpf_helpers.h:libbpf-dev chromium:chromium
SAMPLES := $(sort $(wildcard localstack/samples/*.pcap localstack/samples/*.pcapng))

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## download Go modules
	$(GO) mod download

.PHONY: tools
tools: ## install the Debian reference tools (tshark, tcpflow, …) when root and missing
	@missing=""; for t in $(APT_TOOLS); do cmd=$${t%%:*}; pkg=$${t##*:}; \
	  { command -v $$cmd || test -e $$cmd; } >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "note: missing$$missing (not root: tests that need them will skip)"; fi; \
	fi

.PHONY: build
build: deps ## build bin/flowlake
	$(GO) build -o $(BIN) ./cmd/flowlake

.PHONY: test
test: deps tools minio terraform ## run every test (installs what they need: Go modules, MinIO, Debian tools and Chromium as root, npm packages)
	$(GO) test -count=1 -timeout 25m ./...
	$(MAKE) web-test

.PHONY: lint
lint: deps ## go vet + staticcheck
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...

.PHONY: fuzz
fuzz: deps ## run each fuzz target for FUZZTIME (default 30s)
	@for pkg in $$($(GO) list ./internal/...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$pkg || exit 1; \
	  done; done

.PHONY: bench
bench: build tools bench-query ## Go benchmarks per stage, then flowlake vs tshark vs tcpflow on real captures
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...
	$(MAKE) bench-compare

.PHONY: bench-query
bench-query: deps ## query engine vs DuckDB on a 10M-row, 24 h synthetic lake (built once, cached under /tmp)
	FLOWLAKE_BENCH_QUERY=1 $(GO) test -count=1 -run '^TestBenchQuery$$' -v -timeout 60m ./internal/query

.PHONY: load-test
load-test: deps ## load test of the query API: 64 clients on loopback for LOAD_DURATION (default 30s); not run by CI
	FLOWLAKE_LOAD_TEST=$${LOAD_DURATION:-30s} $(GO) test ./functions/query/ -run '^TestLoad$$' -count=1 -v -timeout 15m

-include internal/bench/bench.mk
include internal/store/minio.mk
include functions/lambda.mk
include localstack/localstack.mk
include internal/agent/agent.mk
include bpf/bpf.mk
include web/web.mk
include infra/infra.mk

.PHONY: demo
DEMO_ADDR ?= 127.0.0.1:8080
DEMO_PASSWORD ?= flowlake-demo
demo: web build ## segment the sample captures, ingest and parse them (functions in process), show the lake, serve the UI
	@rm -rf $(LAKE)
	@for f in $(SAMPLES); do \
	  agent=$$(basename $$f | sed -E 's/\.(pcap|pcapng)$$//; s/[^A-Za-z0-9._-]/-/g'); \
	  echo "== $$f -> agent $$agent"; \
	  ./$(BIN) segment -q --store $(LAKE) --agent "$$agent" --max-bytes 256KiB $$f || exit 1; \
	done
	@echo
	./$(BIN) show --lake $(LAKE)
	@echo
	@echo "UI: http://$(DEMO_ADDR)   login: admin / $(DEMO_PASSWORD)   (Ctrl-C stops)"
	FLOWLAKE_ADMIN_PASSWORD='$(DEMO_PASSWORD)' ./$(BIN) serve --lake $(LAKE) --addr $(DEMO_ADDR)

.PHONY: clean
clean: ## remove build output and the demo lake
	rm -rf bin $(LAKE)
