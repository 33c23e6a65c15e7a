# MinIO for the object-store tests (internal/store/miniotest starts it).
# Included from the top-level Makefile:   include internal/store/minio.mk
#
#   make minio   install the pinned MinIO server into $(GOBIN) unless it is there
#
# Building MinIO takes a few minutes; tests that need it skip when it is missing.

GO ?= go
GOBIN ?= $(shell $(GO) env GOPATH)/bin
# Keep in step with miniotest.Version.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
# Included first, this file must not make minio the default goal.
minio_default_goal := $(.DEFAULT_GOAL)

.PHONY: minio
minio: $(GOBIN)/minio ## install the MinIO server the object-store tests use

$(GOBIN)/minio:
	GOBIN=$(GOBIN) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

.DEFAULT_GOAL := $(minio_default_goal)
