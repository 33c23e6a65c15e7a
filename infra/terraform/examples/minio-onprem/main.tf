# flowlake on-prem: MinIO settings (bucket, lifecycle, users and policies,
# the functions hosts' notification target and bucket rules). The
# processes themselves run on Kubernetes: infra/k8s.
#
#   cd infra/terraform/examples/minio-onprem
#   export MINIO_USER=… MINIO_PASSWORD=…          # MinIO's root (or an admin) user
#   terraform init
#   terraform apply -var minio_server=minio.example.com:9000 -var 'agents=["node-1","node-2"]'
#   terraform output -json agent_credentials    # into the agents' Secret
#
# See README.md for every variable.

terraform {
  required_version = ">= 1.5.7"

  required_providers {
    minio = {
      source  = "aminueza/minio"
      version = "~> 3.41"
    }
  }
}

provider "minio" {
  minio_server = var.minio_server
  minio_region = var.minio_region
  minio_ssl    = var.minio_ssl
  # minio_user and minio_password come from MINIO_USER and MINIO_PASSWORD.
}

module "flowlake" {
  source = "../../modules/minio"

  bucket              = var.bucket
  agents              = var.agents
  notification_target = var.notification_target
  webhook_endpoint    = var.webhook_endpoint
  webhook_auth_token  = var.webhook_auth_token
  nats_address        = var.nats_address
  nats_subject        = var.nats_subject
  queue_dir           = var.queue_dir

  raw_retention_days     = var.raw_retention_days
  secrets_retention_days = var.secrets_retention_days
}
