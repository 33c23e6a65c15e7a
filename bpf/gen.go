// Package bpf holds flowlake's eBPF programs (C sources in this directory)
// and the Go bindings and objects that bpf2go generates from them, for
// amd64 and arm64. The generated files are committed; `make bpf` (or
// `go generate ./bpf`) rebuilds them with clang, and a test checks that
// the committed objects match the sources when clang is present.
//
// tlskeys.c: uprobes on OpenSSL's libssl that send the TLS session secrets
// of each connection through a ring buffer (user side: internal/tlskeys).
package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target amd64,arm64 -type event TLSKeys tlskeys.c -- -O2 -g -Wall -Werror
