# AWS Lambda packages of the ingest, parse and query functions, and the UI bundle.
# Included from the top-level Makefile:   include functions/lambda.mk
#
#   make lambda         build/lambda/<fn>-<arch>.zip for fn in ingest parse query, arch in arm64 amd64:
#                       a static `bootstrap` for the provided.al2023 runtime (-tags lambda.norpc);
#                       and build/lambda/ui.zip from web/dist (`make web`) when it is built
#   make lambda-nocgo   fail if a non-standard package the functions import uses cgo
#
# The binaries are built with CGO_ENABLED=0; lambda-nocgo checks that no
# dependency would lose code to that (go-duckdb, say). Zips need `zip`
# (Debian: apt-get install zip); their entries carry a fixed time and a
# sorted order, so the same binary (the same UI files) gives the same zip.
# infra/terraform/modules/aws deploys exactly these file names
# (infra/terraform_test.go checks it).

GO ?= go
LAMBDA_FUNCTIONS := ingest parse query
LAMBDA_ARCHS := arm64 amd64
LAMBDA_OUT := build/lambda
LAMBDA_ZIPS := $(foreach f,$(LAMBDA_FUNCTIONS),$(foreach a,$(LAMBDA_ARCHS),$(LAMBDA_OUT)/$(f)-$(a).zip))
# The UI bundle: the output of `make web`.
LAMBDA_UI_DIR := web/dist
# Included first, this file must not make lambda the default goal.
lambda_default_goal := $(.DEFAULT_GOAL)

.PHONY: lambda lambda-nocgo lambda-mains lambda-ui
lambda: $(LAMBDA_ZIPS) lambda-ui ## build the Lambda zips of ingest, parse and query (linux arm64 and amd64) and the UI zip

# lambda-mains fails, naming what is missing, when a function has no Lambda main.
lambda-mains:
	@for f in $(LAMBDA_FUNCTIONS); do \
	  if [ ! -d functions/$$f/lambda ]; then \
	    echo "make lambda: functions/$$f/lambda is missing: the $$f function has no Lambda main (package main calling lambda.Start) yet" >&2; exit 1; \
	  fi; done

lambda-nocgo: lambda-mains
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

# lambda-ui zips the built UI (web/dist) into $(LAMBDA_OUT)/ui.zip, with
# fixed times and sorted entries. Without web/dist it says so and builds
# nothing: run `make web` first.
lambda-ui:
	@if [ ! -f $(LAMBDA_UI_DIR)/index.html ]; then \
	  echo "make lambda: $(LAMBDA_UI_DIR)/index.html not found: no ui.zip (run 'make web' first)"; exit 0; fi; \
	command -v zip >/dev/null || { echo "zip is missing: apt-get install zip"; exit 1; }; \
	set -e; rm -rf $(LAMBDA_OUT)/ui $(LAMBDA_OUT)/ui.zip; mkdir -p $(LAMBDA_OUT)/ui; \
	cp -R $(LAMBDA_UI_DIR)/. $(LAMBDA_OUT)/ui/; \
	find $(LAMBDA_OUT)/ui -exec touch -h -t 198001010000 {} +; \
	cd $(LAMBDA_OUT)/ui && find . -type f | LC_ALL=C sort | zip -q -X -@ ../ui.zip; \
	echo "$(LAMBDA_OUT)/ui.zip: $$(find . -type f | wc -l) files of $(LAMBDA_UI_DIR)"

.DEFAULT_GOAL := $(lambda_default_goal)
