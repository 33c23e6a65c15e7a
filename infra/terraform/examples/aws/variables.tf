variable "region" {
  description = "AWS region of everything (the cost model in infra/cost assumes us-east-1)."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix of resource names."
  type        = string
  default     = "flowlake"
}

variable "bucket_name" {
  description = "Globally unique name of the data bucket; the UI and Athena result buckets get -ui and -athena-results appended."
  type        = string
}

variable "force_destroy" {
  description = "Let `terraform destroy` remove the buckets with their objects (for trials)."
  type        = bool
  default     = false
}

variable "architecture" {
  description = "arm64 (default, cheaper) or amd64: which of the zips of `make lambda` is deployed."
  type        = string
  default     = "arm64"
}

variable "upload_ui" {
  description = "Upload web/dist (run `make web` first) to the UI bucket."
  type        = bool
  default     = true
}

variable "agents" {
  description = "Agent ids, e.g. the Kubernetes node names (the DaemonSet uses spec.nodeName)."
  type        = set(string)
  default     = []
}

variable "create_agent_access_keys" {
  description = "Create access keys for the agent users (output agent_access_keys, sensitive). Leave false with IRSA / Pod Identity."
  type        = bool
  default     = false
}

variable "raw_retention_days" {
  description = "Days raw capture segments are kept (pcap export and reparse need them)."
  type        = number
  default     = 14
}

variable "secrets_retention_days" {
  description = "Days TLS key logs are kept (at most raw_retention_days)."
  type        = number
  default     = 7
}

variable "lake_ia_days" {
  description = "Days before lake files move to Standard-IA (0: never; else at least 30)."
  type        = number
  default     = 30
}

variable "lake_glacier_ir_days" {
  description = "Days before lake files move to Glacier Instant Retrieval (0: never)."
  type        = number
  default     = 90
}

variable "query_environment" {
  description = "Extra FLOWLAKE_* settings of the query function (authentication)."
  type        = map(string)
  default     = {}
}
