# Inputs of the flowlake MinIO module. Every one is documented in README.md.

variable "bucket" {
  description = "Bucket holding raw/, secrets/, status/, state/, lake/, quarantine/ and config/ (created by the module)."
  type        = string
  default     = "flowlake"
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with its objects."
  type        = bool
  default     = false
}

variable "agents" {
  description = "Agent ids (1-64 characters of A-Z a-z 0-9 . _ -, not starting with '.'). Each gets a MinIO user that may write only raw/agent=<id>/, secrets/agent=<id>/, status/agent=<id>/ and config/agents/<id>/."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.agents : can(regex("^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$", a))])
    error_message = "agents: each id 1-64 characters of A-Z a-z 0-9 . _ -, not starting with '.'."
  }
}

variable "notification_target" {
  description = "How MinIO tells the functions hosts about new objects: webhook (one host) or nats (NATS JetStream, several hosts share the work)."
  type        = string
  default     = "webhook"

  validation {
    condition     = contains(["webhook", "nats"], var.notification_target)
    error_message = "notification_target: webhook or nats."
  }
}

variable "target_id" {
  description = "Name of MinIO's notification target; the bucket rules use arn:minio:sqs::<target_id>:<webhook|nats>."
  type        = string
  default     = "FLOWLAKE"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]+$", var.target_id))
    error_message = "target_id: letters, digits and _."
  }
}

variable "webhook_endpoint" {
  description = "URL MinIO posts events to: the functions host's POST /minio/events (notification_target = webhook)."
  type        = string
  default     = "http://flowlake-functions.flowlake.svc:9490/minio/events"
}

variable "webhook_auth_token" {
  description = "Bearer token MinIO sends with each webhook; the same as the host's --webhook-token (FLOWLAKE_WEBHOOK_TOKEN)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "nats_address" {
  description = "NATS server, HOST:PORT, MinIO publishes to (notification_target = nats)."
  type        = string
  default     = "nats.flowlake.svc:4222"
}

variable "nats_subject" {
  description = "Subject MinIO publishes to; the hosts' --nats-subject."
  type        = string
  default     = "flowlake.events"
}

variable "queue_dir" {
  description = "Directory on the MinIO server keeping undelivered events until the target takes them (without it MinIO drops them)."
  type        = string
  default     = "/data/.flowlake-events"
}

variable "raw_retention_days" {
  description = "Days before capture segments (raw/) and parse state (state/) expire."
  type        = number
  default     = 14
}

variable "secrets_retention_days" {
  description = "Days before TLS key logs (secrets/) expire (at most raw_retention_days)."
  type        = number
  default     = 7
}

variable "status_retention_days" {
  description = "Days before agent status reports (status/) expire."
  type        = number
  default     = 7
}

variable "quarantine_retention_days" {
  description = "Days before quarantine/ objects expire."
  type        = number
  default     = 30
}

variable "lake_expire_days" {
  description = "Days before lake files expire; 0: never."
  type        = number
  default     = 0
}
