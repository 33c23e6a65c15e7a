# flowlake on MinIO: the bucket and its lifecycle, the users of the
# functions hosts, the query server and each agent with the same S3 policy
# documents as on AWS (infra/terraform/policies), the notification target of
# the functions hosts (webhook or NATS JetStream) and the bucket rules that
# send it the new objects of raw/, secrets/ and status/.

locals {
  bucket_arn = "arn:aws:s3:::${minio_s3_bucket.data.bucket}"
  policy_dir = "${path.module}/../../policies"

  # The new objects the functions handle (internal/notify.Prefixes) and the
  # event they handle (notify.EventCreated).
  event_prefixes = ["raw/", "secrets/", "status/"]
  object_created = ["s3:ObjectCreated:*"]

  queue_arn = "arn:minio:sqs::${var.target_id}:${var.notification_target}"
}

resource "minio_s3_bucket" "data" {
  bucket        = var.bucket
  acl           = "private"
  force_destroy = var.force_destroy
}

resource "minio_ilm_policy" "data" {
  bucket = minio_s3_bucket.data.bucket

  rule {
    id         = "raw-expire"
    filter     = "raw/"
    expiration = "${var.raw_retention_days}d"
  }
  rule {
    id         = "state-expire"
    filter     = "state/"
    expiration = "${var.raw_retention_days}d"
  }
  rule {
    id         = "secrets-expire"
    filter     = "secrets/"
    expiration = "${var.secrets_retention_days}d"
  }
  rule {
    id         = "status-expire"
    filter     = "status/"
    expiration = "${var.status_retention_days}d"
  }
  rule {
    id         = "quarantine-expire"
    filter     = "quarantine/"
    expiration = "${var.quarantine_retention_days}d"
  }
  dynamic "rule" {
    for_each = var.lake_expire_days > 0 ? [var.lake_expire_days] : []
    content {
      id         = "lake-expire"
      filter     = "lake/"
      expiration = "${rule.value}d"
    }
  }

  lifecycle {
    precondition {
      condition     = var.secrets_retention_days <= var.raw_retention_days
      error_message = "secrets_retention_days must not exceed raw_retention_days."
    }
  }
}

# Policies. The functions host runs ingest and parse in one process: its
# user gets both documents.
resource "minio_iam_policy" "ingest" {
  name   = "flowlake-ingest"
  policy = templatefile("${local.policy_dir}/ingest.json", { bucket_arn = local.bucket_arn })
}

resource "minio_iam_policy" "parse" {
  name   = "flowlake-parse"
  policy = templatefile("${local.policy_dir}/parse.json", { bucket_arn = local.bucket_arn })
}

resource "minio_iam_policy" "query" {
  name   = "flowlake-query"
  policy = templatefile("${local.policy_dir}/query.json", { bucket_arn = local.bucket_arn })
}

resource "minio_iam_policy" "agent" {
  for_each = var.agents
  name     = "flowlake-agent-${each.key}"
  policy   = templatefile("${local.policy_dir}/agent.json", { bucket_arn = local.bucket_arn, agent = each.key })
}

# Users; MinIO generates their secret keys (kept in the Terraform state).
resource "minio_iam_user" "functions" {
  name = "flowlake-functions"
}

resource "minio_iam_user" "query" {
  name = "flowlake-query"
}

resource "minio_iam_user" "agent" {
  for_each = var.agents
  name     = "flowlake-agent-${each.key}"
}

resource "minio_iam_user_policy_attachment" "functions_ingest" {
  user_name   = minio_iam_user.functions.id
  policy_name = minio_iam_policy.ingest.id
}

resource "minio_iam_user_policy_attachment" "functions_parse" {
  user_name   = minio_iam_user.functions.id
  policy_name = minio_iam_policy.parse.id
}

resource "minio_iam_user_policy_attachment" "query" {
  user_name   = minio_iam_user.query.id
  policy_name = minio_iam_policy.query.id
}

resource "minio_iam_user_policy_attachment" "agent" {
  for_each    = var.agents
  user_name   = minio_iam_user.agent[each.key].id
  policy_name = minio_iam_policy.agent[each.key].id
}

# The notification target. MinIO may need a restart before a new target
# takes events (the resources' restart_required says so); a target given in
# the server's environment instead (`flowlake functions minio-env`) needs
# none.
resource "minio_notify_webhook" "functions" {
  count       = var.notification_target == "webhook" ? 1 : 0
  name        = var.target_id
  endpoint    = var.webhook_endpoint
  auth_token  = var.webhook_auth_token
  queue_dir   = var.queue_dir
  queue_limit = 100000
  comment     = "flowlake functions host"
}

resource "minio_notify_nats" "functions" {
  count       = var.notification_target == "nats" ? 1 : 0
  name        = var.target_id
  address     = var.nats_address
  subject     = var.nats_subject
  jetstream   = true
  queue_dir   = var.queue_dir
  queue_limit = 100000
  comment     = "flowlake functions hosts (JetStream work queue)"
}

resource "minio_s3_bucket_notification" "functions" {
  bucket = minio_s3_bucket.data.bucket

  dynamic "queue" {
    for_each = local.event_prefixes
    content {
      id            = "flowlake-${trimsuffix(queue.value, "/")}-${var.notification_target}"
      queue_arn     = local.queue_arn
      events        = local.object_created
      filter_prefix = queue.value
    }
  }

  depends_on = [minio_notify_webhook.functions, minio_notify_nats.functions]
}
