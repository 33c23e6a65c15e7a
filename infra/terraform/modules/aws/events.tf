# New objects of raw/, secrets/ and status/ -> SQS -> ingest (batches,
# partial batch failures); messages that fail max_receive_count times go to
# the dead-letter queue.

resource "aws_sqs_queue" "events_dlq" {
  name                      = "${var.name}-events-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "events" {
  name                       = "${var.name}-events"
  visibility_timeout_seconds = 6 * var.ingest_timeout_s
  message_retention_seconds  = 1209600
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.events_dlq.arn
    maxReceiveCount     = 5
  })
  tags = var.tags
}

resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy = templatefile("${path.module}/policies/events-queue.json", {
    events_queue_arn = aws_sqs_queue.events.arn
    bucket_arn       = local.bucket_arn
    account_id       = data.aws_caller_identity.current.account_id
  })
}

resource "aws_s3_bucket_notification" "data" {
  bucket = aws_s3_bucket.data.id

  dynamic "queue" {
    for_each = local.event_prefixes
    content {
      id            = "flowlake-${trimsuffix(queue.value, "/")}"
      queue_arn     = aws_sqs_queue.events.arn
      events        = local.object_created
      filter_prefix = queue.value
    }
  }

  depends_on = [aws_sqs_queue_policy.events]
}

resource "aws_lambda_event_source_mapping" "ingest" {
  event_source_arn        = aws_sqs_queue.events.arn
  function_name           = aws_lambda_function.ingest.arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.ingest_max_concurrency
  }
}

# parse is invoked asynchronously (by ingest, and by itself for the next
# segment); after parse_retries failed retries the event goes to this queue.
resource "aws_sqs_queue" "parse_dlq" {
  name                      = "${var.name}-parse-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_lambda_function_event_invoke_config" "parse" {
  function_name                = aws_lambda_function.parse.function_name
  maximum_retry_attempts       = var.parse_retries
  maximum_event_age_in_seconds = 21600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.parse_dlq.arn
    }
  }

  depends_on = [aws_iam_role_policy.parse_runtime]
}

# Reconcile: parse restarts the segments that were indexed but never
# committed (a lost invocation, a timeout).
resource "aws_cloudwatch_event_rule" "reconcile" {
  name                = "${var.name}-reconcile"
  description         = "flowlake parse: Reconcile"
  schedule_expression = var.reconcile_schedule
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "reconcile" {
  rule = aws_cloudwatch_event_rule.reconcile.name
  arn  = aws_lambda_function.parse.arn
}

resource "aws_lambda_permission" "reconcile" {
  statement_id  = "reconcile-schedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.parse.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reconcile.arn
}
