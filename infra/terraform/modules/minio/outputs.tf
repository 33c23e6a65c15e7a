output "store_url" {
  description = "FLOWLAKE_STORE / --store of the hosts, the query server and the agents."
  value       = "s3://${minio_s3_bucket.data.bucket}"
}

output "queue_arn" {
  description = "ARN of the notification target in the bucket rules."
  value       = local.queue_arn
}

output "restart_required" {
  description = "True when MinIO must be restarted before the new notification target takes events."
  value       = anytrue(concat(minio_notify_webhook.functions[*].restart_required, minio_notify_nats.functions[*].restart_required))
}

output "functions_credentials" {
  description = "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of the functions hosts."
  sensitive   = true
  value = {
    AWS_ACCESS_KEY_ID     = minio_iam_user.functions.id
    AWS_SECRET_ACCESS_KEY = minio_iam_user.functions.secret
  }
}

output "query_credentials" {
  description = "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of the query server."
  sensitive   = true
  value = {
    AWS_ACCESS_KEY_ID     = minio_iam_user.query.id
    AWS_SECRET_ACCESS_KEY = minio_iam_user.query.secret
  }
}

output "agent_credentials" {
  description = "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of each agent."
  sensitive   = true
  value = {
    for id, u in minio_iam_user.agent : id => {
      AWS_ACCESS_KEY_ID     = u.id
      AWS_SECRET_ACCESS_KEY = u.secret
    }
  }
}
