# Inputs of the flowlake AWS module. Every one is documented in README.md.

variable "name" {
  description = "Prefix of every resource name (functions, roles, queues, tables)."
  type        = string
  default     = "flowlake"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name))
    error_message = "name: 1-31 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "bucket_name" {
  description = "Name of the bucket holding raw/, secrets/, status/, state/, lake/, quarantine/ and config/ (created by the module; flowlake keys start at its root)."
  type        = string
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the buckets with their objects."
  type        = bool
  default     = false
}

variable "lambda_dir" {
  description = "Directory holding the zips `make lambda` builds (build/lambda): <function>-<arch>.zip for ingest, parse and query."
  type        = string
}

variable "architecture" {
  description = "CPU architecture of the functions, as in the zip names: arm64 (Graviton, cheaper per GB-second) or amd64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "amd64"], var.architecture)
    error_message = "architecture: arm64 or amd64."
  }
}

variable "agents" {
  description = "Agent ids (keys.ValidAgent: 1-64 characters of A-Z a-z 0-9 . _ -, not starting with '.'). Each gets an IAM user that may write only raw/agent=<id>/, secrets/agent=<id>/, status/agent=<id>/ and config/agents/<id>/."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.agents : can(regex("^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$", a))])
    error_message = "agents: each id 1-64 characters of A-Z a-z 0-9 . _ -, not starting with '.'."
  }
}

variable "create_agent_access_keys" {
  description = "Create an access key per agent user (its secret is kept in the Terraform state; prefer attaching output agent_policies to an IRSA / Pod Identity role)."
  type        = bool
  default     = false
}

variable "raw_retention_days" {
  description = "Days before capture segments (raw/) and parse state (state/) expire."
  type        = number
  default     = 14

  validation {
    condition     = var.raw_retention_days >= 1
    error_message = "raw_retention_days: at least 1."
  }
}

variable "secrets_retention_days" {
  description = "Days before TLS key logs (secrets/) expire. At most raw_retention_days: keys outliving their packets serve nothing."
  type        = number
  default     = 7

  validation {
    condition     = var.secrets_retention_days >= 1
    error_message = "secrets_retention_days: at least 1."
  }
}

variable "status_retention_days" {
  description = "Days before agent status reports (status/) expire; their rows stay in lake/capture_status."
  type        = number
  default     = 7
}

variable "quarantine_retention_days" {
  description = "Days before quarantined inputs and their error documents (quarantine/) expire."
  type        = number
  default     = 30
}

variable "lake_ia_days" {
  description = "Days before lake files move to S3 Standard-IA (S3 requires at least 30). 0 keeps them in Standard."
  type        = number
  default     = 30

  validation {
    condition     = var.lake_ia_days == 0 || var.lake_ia_days >= 30
    error_message = "lake_ia_days: 0 or at least 30 (an S3 rule)."
  }
}

variable "lake_glacier_ir_days" {
  description = "Days before lake files move to S3 Glacier Instant Retrieval (still readable by Athena, DuckDB and query). 0: never."
  type        = number
  default     = 90
}

variable "lake_expire_days" {
  description = "Days before lake files expire. 0: never."
  type        = number
  default     = 0
}

variable "ingest_memory_mb" {
  description = "Memory of ingest (it reads segment headers and status reports)."
  type        = number
  default     = 256
}

variable "ingest_timeout_s" {
  description = "Timeout of one ingest batch; the event queue's visibility timeout is six times it."
  type        = number
  default     = 60
}

variable "ingest_max_concurrency" {
  description = "Most ingest instances the event queue runs at once (2-1000)."
  type        = number
  default     = 10
}

variable "parse_memory_mb" {
  description = "Memory of parse; 1769 MB is one full vCPU (parse is CPU-bound and single-threaded per segment)."
  type        = number
  default     = 1769
}

variable "parse_timeout_s" {
  description = "Timeout of one parse: the wait for the predecessor (parse_wait_predecessor) plus the parse of one segment."
  type        = number
  default     = 300
}

variable "parse_wait_predecessor" {
  description = "How long parse waits for the checkpoint of the previous segment (FLOWLAKE_WAIT_PREDECESSOR, a Go duration)."
  type        = string
  default     = "30s"
}

variable "parse_retries" {
  description = "Retries of a failed asynchronous parse invocation (0-2) before it goes to the parse dead-letter queue."
  type        = number
  default     = 2
}

variable "reconcile_schedule" {
  description = "EventBridge schedule of parse's Reconcile (restarts segments indexed but never parsed)."
  type        = string
  default     = "rate(5 minutes)"
}

variable "query_memory_mb" {
  description = "Memory of query."
  type        = number
  default     = 1769
}

variable "query_timeout_s" {
  description = "Timeout of one query request (API Gateway HTTP APIs stop waiting at 30 s)."
  type        = number
  default     = 29
}

variable "query_environment" {
  description = "Extra environment of the query function: FLOWLAKE_ADMIN_PASSWORD (first admin), FLOWLAKE_JWT_KEY, FLOWLAKE_TOKEN_TTL, FLOWLAKE_OIDC_* (see `flowlake serve -h`); FLOWLAKE_PUBLIC_URL defaults to the CloudFront URL."
  type        = map(string)
  default     = {}
}

variable "log_level" {
  description = "FLOWLAKE_LOG_LEVEL of the functions: debug, info, warn or error."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Retention of the functions' CloudWatch log groups."
  type        = number
  default     = 30
}

variable "ui_dir" {
  description = "Directory of the built UI (web/dist, what `make web` writes) uploaded to the UI bucket; null uploads nothing."
  type        = string
  default     = null
}

variable "cors_allowed_origins" {
  description = "Origins allowed to call the query API directly, across origins (e.g. http://localhost:5173 for UI development); the UI itself calls it through CloudFront under /api/."
  type        = list(string)
  default     = []
}

variable "cloudfront_price_class" {
  description = "CloudFront price class of the UI distribution."
  type        = string
  default     = "PriceClass_100"
}

variable "athena_bytes_scanned_cutoff" {
  description = "Bytes one Athena query of the workgroup may scan before it is cancelled (at least 10 MB)."
  type        = number
  default     = 107374182400
}

variable "tags" {
  description = "Tags of every resource that takes tags."
  type        = map(string)
  default     = {}
}
