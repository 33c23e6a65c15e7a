# Athena reads the lake through Glue tables with partition projection: no
# crawler, no partition to register. The columns and table properties come
# from schema/ (glue_tables.tf.json is generated: go generate ./infra).

resource "aws_glue_catalog_database" "lake" {
  name        = replace(var.name, "-", "_")
  description = "flowlake lake tables (s3://${var.bucket_name}/lake/)"
}

resource "aws_glue_catalog_table" "lake" {
  for_each      = local.glue_tables
  name          = each.key
  database_name = aws_glue_catalog_database.lake.name
  description   = each.value.description
  table_type    = "EXTERNAL_TABLE"

  parameters = merge(each.value.parameters, {
    "EXTERNAL"                  = "TRUE"
    "classification"            = "parquet"
    "parquet.compression"       = "ZSTD"
    "storage.location.template" = "s3://${aws_s3_bucket.data.bucket}/lake/${each.key}/dt=$${dt}/hour=$${hour}/"
  })

  dynamic "partition_keys" {
    for_each = each.value.partition_keys
    content {
      name = partition_keys.value.name
      type = partition_keys.value.type
    }
  }

  storage_descriptor {
    location      = "s3://${aws_s3_bucket.data.bucket}/lake/${each.key}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    dynamic "columns" {
      for_each = each.value.columns
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

# Query results live in their own bucket and expire.
resource "aws_s3_bucket" "athena" {
  bucket        = "${var.bucket_name}-athena-results"
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "athena" {
  bucket                  = aws_s3_bucket.athena.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "athena" {
  bucket = aws_s3_bucket.athena.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_policy" "athena" {
  bucket     = aws_s3_bucket.athena.id
  policy     = templatefile("${path.module}/policies/tls-only-bucket.json", { bucket_arn = aws_s3_bucket.athena.arn })
  depends_on = [aws_s3_bucket_public_access_block.athena]
}

resource "aws_s3_bucket_lifecycle_configuration" "athena" {
  bucket = aws_s3_bucket.athena.id
  rule {
    id     = "results-expire"
    status = "Enabled"
    filter {}
    expiration {
      days = 7
    }
  }
}

resource "aws_athena_workgroup" "lake" {
  name          = var.name
  description   = "flowlake: queries of the lake tables"
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    result_configuration {
      output_location = "s3://${aws_s3_bucket.athena.bucket}/results/"
      encryption_configuration {
        encryption_option = "SSE_S3"
      }
    }
  }

  tags = var.tags
}
