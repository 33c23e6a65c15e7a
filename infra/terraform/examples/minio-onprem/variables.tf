variable "minio_server" {
  description = "MinIO S3 API, HOST:PORT."
  type        = string
}

variable "minio_region" {
  description = "MinIO's region (MINIO_REGION of the server)."
  type        = string
  default     = "us-east-1"
}

variable "minio_ssl" {
  description = "Reach MinIO over HTTPS."
  type        = bool
  default     = true
}

variable "bucket" {
  description = "The flowlake bucket."
  type        = string
  default     = "flowlake"
}

variable "agents" {
  description = "Agent ids (the DaemonSet uses the node names)."
  type        = set(string)
  default     = []
}

variable "notification_target" {
  description = "webhook (one functions host, infra/k8s/functions-host.yaml with replicas 1) or nats (several hosts sharing a JetStream work queue)."
  type        = string
  default     = "webhook"
}

variable "webhook_endpoint" {
  description = "The functions host's POST /minio/events as MinIO reaches it."
  type        = string
  default     = "http://flowlake-functions.flowlake.svc:9490/minio/events"
}

variable "webhook_auth_token" {
  description = "Token MinIO sends; the host's FLOWLAKE_WEBHOOK_TOKEN (Secret flowlake-functions)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "nats_address" {
  description = "NATS server HOST:PORT MinIO publishes to."
  type        = string
  default     = "nats.flowlake.svc:4222"
}

variable "nats_subject" {
  description = "Subject of the events; the hosts' FLOWLAKE_NATS_SUBJECT."
  type        = string
  default     = "flowlake.events"
}

variable "queue_dir" {
  description = "Directory on the MinIO server(s) for undelivered events."
  type        = string
  default     = "/data/.flowlake-events"
}

variable "raw_retention_days" {
  description = "Days capture segments are kept."
  type        = number
  default     = 14
}

variable "secrets_retention_days" {
  description = "Days TLS key logs are kept."
  type        = number
  default     = 7
}
