# flowlake on AWS: one bucket for everything flowlake stores, the ingest,
# parse and query functions, S3 -> SQS -> ingest, parse invoked
# asynchronously, query behind an API Gateway HTTP API, the UI on S3 +
# CloudFront, and Glue tables that Athena queries with partition projection.
# See README.md for the picture and the inputs.

data "aws_caller_identity" "current" {}

locals {
  bucket_arn = aws_s3_bucket.data.arn
  store_url  = "s3://${aws_s3_bucket.data.bucket}"

  # The new objects the functions handle (internal/notify.Prefixes) and the
  # event they handle.
  event_prefixes = ["raw/", "secrets/", "status/"]
  object_created = ["s3:ObjectCreated:*"]

  # Lambda names architectures x86_64 and arm64; the zips use Go's names.
  lambda_architecture = var.architecture == "amd64" ? "x86_64" : "arm64"

  # The zips `make lambda` builds.
  zips = {
    for fn in ["ingest", "parse", "query"] : fn => "${var.lambda_dir}/${fn}-${var.architecture}.zip"
  }

  # The S3 policies shared with the MinIO module (infra/terraform/policies).
  policy_dir = "${path.module}/../../policies"
}
