# Least privilege. The S3 statements are the documents in
# infra/terraform/policies (shared with the MinIO module and applied to a
# real MinIO by infra's tests); the rest are in ./policies.
#
#   ingest  reads raw/, status/, state/; writes state/, lake/capture_status/, quarantine/
#   parse   reads raw/, secrets/, state/, config/agents/, lake/ (reparse); writes state/, lake/, quarantine/
#   query   reads lake/, config/, raw/ (pcap export); writes config/ (users, teams, views, keys), not config/agents/
#   agent   writes raw/agent=<id>/, secrets/agent=<id>/, status/agent=<id>/, config/agents/<id>/
#
# Of the functions, parse alone reads secrets/.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "fn" {
  for_each           = local.zips
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "ingest_s3" {
  name   = "s3"
  role   = aws_iam_role.fn["ingest"].id
  policy = templatefile("${local.policy_dir}/ingest.json", { bucket_arn = local.bucket_arn })
}

resource "aws_iam_role_policy" "ingest_runtime" {
  name = "runtime"
  role = aws_iam_role.fn["ingest"].id
  policy = templatefile("${path.module}/policies/ingest-runtime.json", {
    events_queue_arn   = aws_sqs_queue.events.arn
    parse_function_arn = aws_lambda_function.parse.arn
    log_group_arn      = aws_cloudwatch_log_group.fn["ingest"].arn
  })
}

resource "aws_iam_role_policy" "parse_s3" {
  name   = "s3"
  role   = aws_iam_role.fn["parse"].id
  policy = templatefile("${local.policy_dir}/parse.json", { bucket_arn = local.bucket_arn })
}

resource "aws_iam_role_policy" "parse_runtime" {
  name = "runtime"
  role = aws_iam_role.fn["parse"].id
  policy = templatefile("${path.module}/policies/parse-runtime.json", {
    parse_function_arn = aws_lambda_function.parse.arn
    parse_dlq_arn      = aws_sqs_queue.parse_dlq.arn
    log_group_arn      = aws_cloudwatch_log_group.fn["parse"].arn
  })
}

resource "aws_iam_role_policy" "query_s3" {
  name   = "s3"
  role   = aws_iam_role.fn["query"].id
  policy = templatefile("${local.policy_dir}/query.json", { bucket_arn = local.bucket_arn })
}

resource "aws_iam_role_policy" "query_runtime" {
  name = "runtime"
  role = aws_iam_role.fn["query"].id
  policy = templatefile("${path.module}/policies/query-runtime.json", {
    log_group_arn = aws_cloudwatch_log_group.fn["query"].arn
  })
}

# One IAM user per agent, allowed only its own prefixes. For EKS, attach the
# document of output agent_policies to the role of the node's agent
# (IRSA / Pod Identity) instead of using access keys.
resource "aws_iam_user" "agent" {
  for_each = var.agents
  name     = "${var.name}-agent-${each.key}"
  path     = "/${var.name}/agents/"
  tags     = var.tags

  lifecycle {
    precondition {
      condition     = length("${var.name}-agent-${each.key}") <= 64
      error_message = "IAM user names have at most 64 characters: shorten name or the agent id ${each.key}."
    }
  }
}

resource "aws_iam_user_policy" "agent" {
  for_each = var.agents
  name     = "s3"
  user     = aws_iam_user.agent[each.key].name
  policy   = templatefile("${local.policy_dir}/agent.json", { bucket_arn = local.bucket_arn, agent = each.key })
}

resource "aws_iam_access_key" "agent" {
  for_each = var.create_agent_access_keys ? var.agents : toset([])
  user     = aws_iam_user.agent[each.key].name
}
