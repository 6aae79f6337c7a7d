# Pinned Terraform and providers. `terraform init` writes .terraform.lock.hcl beside this file;
# commit it (the pipeline runs `terraform init -backend=false` and `terraform validate`).
terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.82.2"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "= 4.0.6"
    }
  }

  # Remote state in S3 with a DynamoDB lock table (made once by bootstrap/). The values come
  # from a file at init time: terraform init -backend-config=backend.hcl (backend.hcl.example).
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "pedidos-veloz"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
