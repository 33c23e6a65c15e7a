# flowlake — see README.md. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/flowlake
LAKE ?= ./flowlake-data
STATICCHECK_VERSION := v0.8.2
GOBIN := $(shell $(GO) env GOPATH)/bin
# Debian packages the tests use as references (installed when root and missing).
APT_TOOLS := tshark:tshark tcpflow:tcpflow tcpdump:tcpdump editcap:wireshark-common nginx:nginx wrk:wrk ethtool:ethtool
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
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
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
test: deps tools minio ## run every test (installs what they need: Go modules, MinIO, Debian tools as root)
	$(GO) test -count=1 -timeout 25m ./...

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
bench: build tools ## Go benchmarks per stage, then flowlake vs tshark vs tcpflow on real captures
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...
	$(MAKE) bench-compare

-include internal/bench/bench.mk
include internal/store/minio.mk
include functions/lambda.mk
include localstack/localstack.mk
include internal/agent/agent.mk

.PHONY: demo
demo: build ## cut the sample captures into segments, ingest and parse them with the functions (in process), show the lake
	@rm -rf $(LAKE)
	@for f in $(SAMPLES); do \
	  agent=$$(basename $$f | sed -E 's/\.(pcap|pcapng)$$//; s/[^A-Za-z0-9._-]/-/g'); \
	  echo "== $$f -> agent $$agent"; \
	  ./$(BIN) segment -q --store $(LAKE) --agent "$$agent" --max-bytes 256KiB $$f || exit 1; \
	done
	@echo
	./$(BIN) show --lake $(LAKE)

.PHONY: clean
clean: ## remove build output and the demo lake
	rm -rf bin $(LAKE)
