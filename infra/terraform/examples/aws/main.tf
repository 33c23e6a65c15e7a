# flowlake on AWS: the module with the settings most deployments change.
#
#   make lambda web                 # build/lambda/*.zip and web/dist
#   cd infra/terraform/examples/aws
#   terraform init
#   terraform apply -var bucket_name=my-flowlake -var 'agents=["node-1","node-2"]'
#
# See README.md for every variable.

terraform {
  required_version = ">= 1.5.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = { "app" = "flowlake" }
  }
}

module "flowlake" {
  source = "../../modules/aws"

  name          = var.name
  bucket_name   = var.bucket_name
  force_destroy = var.force_destroy

  # What `make lambda` builds, from the repository root.
  lambda_dir   = "${path.module}/../../../../build/lambda"
  architecture = var.architecture
  ui_dir       = var.upload_ui ? "${path.module}/../../../../web/dist" : null

  agents                   = var.agents
  create_agent_access_keys = var.create_agent_access_keys

  raw_retention_days     = var.raw_retention_days
  secrets_retention_days = var.secrets_retention_days
  lake_ia_days           = var.lake_ia_days
  lake_glacier_ir_days   = var.lake_glacier_ir_days

  query_environment = var.query_environment
}
