# The three functions: the zips `make lambda` builds (a static `bootstrap`
# for provided.al2023), configured through FLOWLAKE_* variables
# (functions/internal/lambdaenv).

resource "aws_cloudwatch_log_group" "fn" {
  for_each          = local.zips
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "ingest" {
  function_name    = "${var.name}-ingest"
  description      = "flowlake ingest: validates new objects, indexes segments, starts parse"
  role             = aws_iam_role.fn["ingest"].arn
  filename         = local.zips["ingest"]
  source_code_hash = filebase64sha256(local.zips["ingest"])
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [local.lambda_architecture]
  memory_size      = var.ingest_memory_mb
  timeout          = var.ingest_timeout_s

  environment {
    variables = {
      FLOWLAKE_STORE          = local.store_url
      FLOWLAKE_PARSE_FUNCTION = aws_lambda_function.parse.function_name
      FLOWLAKE_LOG_LEVEL      = var.log_level
    }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.fn["ingest"].name
  }

  tags       = var.tags
  depends_on = [aws_iam_role_policy.ingest_s3, aws_iam_role_policy.ingest_runtime]
}

resource "aws_lambda_function" "parse" {
  function_name    = "${var.name}-parse"
  description      = "flowlake parse: segment -> TCP/HTTP/DNS/TLS rows in the lake, in order per stream"
  role             = aws_iam_role.fn["parse"].arn
  filename         = local.zips["parse"]
  source_code_hash = filebase64sha256(local.zips["parse"])
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [local.lambda_architecture]
  memory_size      = var.parse_memory_mb
  timeout          = var.parse_timeout_s

  environment {
    variables = {
      FLOWLAKE_STORE            = local.store_url
      FLOWLAKE_WAIT_PREDECESSOR = var.parse_wait_predecessor
      FLOWLAKE_LOG_LEVEL        = var.log_level
    }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.fn["parse"].name
  }

  tags = var.tags
}

locals {
  # Settings of query that var.query_environment may change.
  query_defaults = {
    FLOWLAKE_PUBLIC_URL = "https://${aws_cloudfront_distribution.ui.domain_name}"
    FLOWLAKE_LOG_LEVEL  = var.log_level
  }
}

resource "aws_lambda_function" "query" {
  function_name    = "${var.name}-query"
  description      = "flowlake query: the HTTP API of the UI over the lake"
  role             = aws_iam_role.fn["query"].arn
  filename         = local.zips["query"]
  source_code_hash = filebase64sha256(local.zips["query"])
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [local.lambda_architecture]
  memory_size      = var.query_memory_mb
  timeout          = var.query_timeout_s

  environment {
    variables = merge(local.query_defaults, var.query_environment, {
      FLOWLAKE_STORE = local.store_url
    })
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.fn["query"].name
  }

  tags       = var.tags
  depends_on = [aws_iam_role_policy.query_s3, aws_iam_role_policy.query_runtime]
}
