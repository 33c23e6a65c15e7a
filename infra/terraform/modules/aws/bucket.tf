# The data bucket: private, encrypted, TLS only, with lifecycle rules.

resource "aws_s3_bucket" "data" {
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_policy" "data" {
  bucket     = aws_s3_bucket.data.id
  policy     = templatefile("${path.module}/policies/tls-only-bucket.json", { bucket_arn = local.bucket_arn })
  depends_on = [aws_s3_bucket_public_access_block.data]
}

# Lifecycle: what only serves parsing expires, the lake moves to cheaper
# tiers. Objects below 128 KiB do not transition (S3 would bill them as
# 128 KiB in Standard-IA): compaction (flowlake compact) makes lake files
# large enough.
resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    id     = "raw-expire"
    status = "Enabled"
    filter {
      prefix = "raw/"
    }
    expiration {
      days = var.raw_retention_days
    }
  }

  rule {
    id     = "state-expire"
    status = "Enabled"
    filter {
      prefix = "state/"
    }
    expiration {
      days = var.raw_retention_days
    }
  }

  rule {
    id     = "secrets-expire"
    status = "Enabled"
    filter {
      prefix = "secrets/"
    }
    expiration {
      days = var.secrets_retention_days
    }
  }

  rule {
    id     = "status-expire"
    status = "Enabled"
    filter {
      prefix = "status/"
    }
    expiration {
      days = var.status_retention_days
    }
  }

  rule {
    id     = "quarantine-expire"
    status = "Enabled"
    filter {
      prefix = "quarantine/"
    }
    expiration {
      days = var.quarantine_retention_days
    }
  }

  dynamic "rule" {
    for_each = var.lake_ia_days > 0 || var.lake_glacier_ir_days > 0 ? [1] : []
    content {
      id     = "lake-tiers"
      status = "Enabled"
      filter {
        and {
          prefix                   = "lake/"
          object_size_greater_than = 131072
        }
      }
      dynamic "transition" {
        for_each = var.lake_ia_days > 0 ? [var.lake_ia_days] : []
        content {
          days          = transition.value
          storage_class = "STANDARD_IA"
        }
      }
      dynamic "transition" {
        for_each = var.lake_glacier_ir_days > 0 ? [var.lake_glacier_ir_days] : []
        content {
          days          = transition.value
          storage_class = "GLACIER_IR"
        }
      }
    }
  }

  dynamic "rule" {
    for_each = var.lake_expire_days > 0 ? [var.lake_expire_days] : []
    content {
      id     = "lake-expire"
      status = "Enabled"
      filter {
        prefix = "lake/"
      }
      expiration {
        days = rule.value
      }
    }
  }

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }

  lifecycle {
    precondition {
      condition     = var.secrets_retention_days <= var.raw_retention_days
      error_message = "secrets_retention_days must not exceed raw_retention_days."
    }
    precondition {
      condition     = var.lake_glacier_ir_days == 0 || var.lake_ia_days == 0 || var.lake_glacier_ir_days >= var.lake_ia_days + 30
      error_message = "lake_glacier_ir_days must be at least lake_ia_days + 30 (objects stay 30 days in Standard-IA)."
    }
    precondition {
      condition     = var.lake_expire_days == 0 || var.lake_expire_days > max(var.lake_ia_days, var.lake_glacier_ir_days)
      error_message = "lake_expire_days must come after the transitions (or be 0)."
    }
  }
}
