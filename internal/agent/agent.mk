# Capture agent benchmark (see internal/agent/README.md). Included from the
# top-level Makefile:   include internal/agent/agent.mk
#
#   make agent-bench    agent vs tcpdump on the same veth traffic: highest
#                       packet rate without kernel drops, CPU s per GB (root)
#
# BENCH_SECS (default 3) is the length of each traffic step; BENCH_OUT, if
# set, receives the table.

# This file's directory, taken before any later include changes MAKEFILE_LIST.
AGENT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
GO ?= go
# Included early, this file must not make agent-bench the default goal.
agent_default_goal := $(.DEFAULT_GOAL)

.PHONY: agent-bench
agent-bench: ## capture agent vs tcpdump: packet rate without drops, CPU per GB (root; prints a table)
	$(GO) build -o bin/flowlake ./cmd/flowlake
	FLOWLAKE_BENCH=1 FLOWLAKE_BIN=$(abspath bin/flowlake) $(GO) test -count=1 -run '^TestAgentBench$$' -v -timeout 30m $(if $(filter /%,$(AGENT_DIR)),$(AGENT_DIR),./$(AGENT_DIR))/

.DEFAULT_GOAL := $(agent_default_goal)
