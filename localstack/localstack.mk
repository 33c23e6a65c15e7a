# The local stack: MinIO + bucket notifications + the functions host, as
# background processes without Docker (localstack/README.md).
# Included from the top-level Makefile:   include localstack/localstack.mk
#
#   make up     build flowlake, start everything, wait until healthy, print where it runs
#   make down   stop it (data stays in ./.localstack)

# Included before the Makefile's own targets, this file must not change the
# default goal.
localstack_default_goal := $(.DEFAULT_GOAL)

.PHONY: up
up: build ## run MinIO + notifications + the functions host locally (state in ./.localstack)
	FLOWLAKE_BIN=$(CURDIR)/$(BIN) MINIO_VERSION=$(MINIO_VERSION) bash localstack/up.sh

.PHONY: down
down: ## stop what 'make up' started
	bash localstack/down.sh

.DEFAULT_GOAL := $(localstack_default_goal)
