output "bucket" {
  description = "The data bucket; the store URL of agents and tools is s3://<bucket>."
  value       = aws_s3_bucket.data.bucket
}

output "store_url" {
  description = "FLOWLAKE_STORE / --store for agents and the CLI."
  value       = local.store_url
}

output "functions" {
  description = "Names of the ingest, parse and query functions."
  value = {
    ingest = aws_lambda_function.ingest.function_name
    parse  = aws_lambda_function.parse.function_name
    query  = aws_lambda_function.query.function_name
  }
}

output "query_api_url" {
  description = "Base URL of the query HTTP API."
  value       = aws_apigatewayv2_stage.query.invoke_url
}

output "ui_url" {
  description = "The UI (CloudFront)."
  value       = "https://${aws_cloudfront_distribution.ui.domain_name}/"
}

output "ui_bucket" {
  description = "Bucket of the UI files (to upload with `aws s3 sync` instead of ui_dir)."
  value       = aws_s3_bucket.ui.bucket
}

output "dead_letter_queues" {
  description = "URLs of the queues of events ingest could not handle and of failed parse invocations; watch their depth."
  value = {
    events = aws_sqs_queue.events_dlq.url
    parse  = aws_sqs_queue.parse_dlq.url
  }
}

output "glue_database" {
  description = "Glue database of the lake tables (Athena: SELECT … FROM <database>.http)."
  value       = aws_glue_catalog_database.lake.name
}

output "athena_workgroup" {
  description = "Athena workgroup with the results location and the scan cutoff."
  value       = aws_athena_workgroup.lake.name
}

output "agent_users" {
  description = "IAM user of each agent."
  value       = { for id, u in aws_iam_user.agent : id => u.name }
}

output "agent_policies" {
  description = "The S3 policy document of each agent (attach it to an IRSA / Pod Identity role instead of using the users' keys)."
  value       = { for id, p in aws_iam_user_policy.agent : id => p.policy }
}

output "agent_access_keys" {
  description = "Access key of each agent user when create_agent_access_keys is set."
  sensitive   = true
  value = {
    for id, k in aws_iam_access_key.agent : id => {
      AWS_ACCESS_KEY_ID     = k.id
      AWS_SECRET_ACCESS_KEY = k.secret
    }
  }
}
