# eBPF objects (see bpf/gen.go). Included from the top-level Makefile:
#   include bpf/bpf.mk
#
#   make bpf    rebuild bpf/*_bpfel.o and their Go bindings with bpf2go
#               (clang, llvm-strip and libbpf-dev's headers; `make tools`
#               installs them as root). Commit the result: the build and
#               the agent use the committed files, and TestGeneratedUpToDate
#               checks them against the sources when clang is present.

GO ?= go

.PHONY: bpf
bpf: ## rebuild the eBPF objects and Go bindings in bpf/ (clang, llvm, libbpf-dev)
	$(GO) generate ./bpf
