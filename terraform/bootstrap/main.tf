# Run once per AWS account, with local state, before the main stack: the S3 bucket and the
# DynamoDB table that hold and lock the main stack's remote state.
#   cd terraform/bootstrap && terraform init && terraform apply
terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    aws = { source = "hashicorp/aws", version = "= 5.82.2" }
  }
}

# The region is the AWS CLI's: AWS_REGION (or the profile's), as for the main stack's backend.
provider "aws" {}

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

locals {
  bucket = "pedidos-veloz-terraform-state-${data.aws_caller_identity.current.account_id}"
}

resource "aws_kms_key" "state" {
  description             = "pedidos-veloz terraform state"
  deletion_window_in_days = 30
  enable_key_rotation     = true

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_s3_bucket" "state" {
  # checkov:skip=CKV_AWS_18:Access logs would need a second bucket for one writer (Terraform); CloudTrail records who touched the state
  # checkov:skip=CKV2_AWS_62:Nothing reacts to state changes; event notifications would have no consumer
  # checkov:skip=CKV_AWS_144:State is versioned and KMS-encrypted in one region; a regional outage stops applies, not the platform
  bucket = local.bucket

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.state.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    id     = "old-state-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_dynamodb_table" "locks" {
  name         = "pedidos-veloz-terraform-locks"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "LockID"

  attribute {
    name = "LockID"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.state.arn
  }
}

output "backend_config" {
  description = "Put these into terraform/backend.hcl."
  value       = "bucket = \"${aws_s3_bucket.state.id}\"\ndynamodb_table = \"${aws_dynamodb_table.locks.name}\"\nregion = \"${data.aws_region.current.name}\""
}
