# AWS Lambda packages of the ingest and parse functions.
# Included from the top-level Makefile:   include functions/lambda.mk
#
#   make lambda         build/lambda/<fn>-<arch>.zip for fn in ingest parse, arch in arm64 amd64:
#                       a static `bootstrap` for the provided.al2023 runtime (-tags lambda.norpc)
#   make lambda-nocgo   fail if a non-standard package the functions import uses cgo
#
# The binaries are built with CGO_ENABLED=0; lambda-nocgo checks that no
# dependency would lose code to that (go-duckdb, say). Zips need `zip`
# (Debian: apt-get install zip); their entries carry a fixed time, so the same
# binary gives the same zip.

GO ?= go
LAMBDA_FUNCTIONS := ingest parse
LAMBDA_ARCHS := arm64 amd64
LAMBDA_OUT := build/lambda
LAMBDA_ZIPS := $(foreach f,$(LAMBDA_FUNCTIONS),$(foreach a,$(LAMBDA_ARCHS),$(LAMBDA_OUT)/$(f)-$(a).zip))
# Included first, this file must not make lambda the default goal.
lambda_default_goal := $(.DEFAULT_GOAL)

.PHONY: lambda lambda-nocgo
lambda: $(LAMBDA_ZIPS) ## build the Lambda zips of ingest and parse (linux arm64 and amd64)

lambda-nocgo:
	@bad=$$(CGO_ENABLED=1 GOOS=linux $(GO) list -deps -tags lambda.norpc \
	  -f '{{if and .CgoFiles (not .Standard)}}{{.ImportPath}}{{end}}' \
	  $(foreach f,$(LAMBDA_FUNCTIONS),./functions/$(f)/lambda)); \
	if [ -n "$$bad" ]; then echo "the Lambda functions import packages that use cgo:" $$bad; exit 1; fi

# lambda_zip builds function $(1) for architecture $(2). Always rebuilt:
# make cannot see Go's dependencies, and the Go build cache makes it cheap.
define lambda_zip
.PHONY: $(LAMBDA_OUT)/$(1)-$(2).zip
$(LAMBDA_OUT)/$(1)-$(2).zip: lambda-nocgo
	@command -v zip >/dev/null || { echo "zip is missing: apt-get install zip"; exit 1; }
	CGO_ENABLED=0 GOOS=linux GOARCH=$(2) $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w" \
	  -o $(LAMBDA_OUT)/$(1)-$(2)/bootstrap ./functions/$(1)/lambda
	touch -t 198001010000 $(LAMBDA_OUT)/$(1)-$(2)/bootstrap
	rm -f $$@
	cd $(LAMBDA_OUT)/$(1)-$(2) && zip -q -X $$(abspath $$@) bootstrap
endef
$(foreach f,$(LAMBDA_FUNCTIONS),$(foreach a,$(LAMBDA_ARCHS),$(eval $(call lambda_zip,$(f),$(a)))))

.DEFAULT_GOAL := $(lambda_default_goal)
