# Deployment: Terraform and the tools the infra tests use (infra/README.md).
# Included from the top-level Makefile:   include infra/infra.mk
#
#   make terraform   install the pinned Terraform into $(GOBIN) unless terraform is on PATH
#                    (TestTerraformFmt runs `terraform fmt -check -recursive infra/terraform`)
#
# `terraform validate` needs the providers from the registry and is not run
# by the tests; infra's Go tests parse the HCL instead (infra/terraform_test.go).

GO ?= go
GOBIN ?= $(shell $(GO) env GOPATH)/bin
TERRAFORM_VERSION := v1.5.7
# nats-server for the NATS deployment test, zip for make lambda.
APT_TOOLS += nats-server:nats-server zip:zip
# Included first, this file must not make terraform the default goal.
infra_default_goal := $(.DEFAULT_GOAL)

.PHONY: terraform
terraform: ## install the pinned Terraform (go install) unless terraform is on PATH
	@command -v terraform >/dev/null || test -x $(GOBIN)/terraform || \
	  { echo "installing terraform $(TERRAFORM_VERSION) (go install, a few minutes)"; \
	    GOBIN=$(GOBIN) $(GO) install github.com/hashicorp/terraform@$(TERRAFORM_VERSION); }

.DEFAULT_GOAL := $(infra_default_goal)
