variable "region" {
  description = "AWS region for everything (three availability zones are used)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "availability_zone_suffixes" {
  description = "The three availability zones of the region to use, by their letter."
  type        = list(string)
  default     = ["a", "b", "c"]

  validation {
    condition     = length(distinct(var.availability_zone_suffixes)) == 3 && alltrue([for s in var.availability_zone_suffixes : can(regex("^[a-z]$", s))])
    error_message = "availability_zone_suffixes must be three distinct letters, such as [\"a\", \"b\", \"c\"]."
  }
}

variable "environment" {
  description = "Name of this environment; used in resource names and tags."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment must be 2-16 lowercase letters, digits or dashes."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC; split into public, private (nodes) and database subnets per AZ. k8s/overlays/prod allows PostgreSQL egress to it."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 18
    error_message = "vpc_cidr must be an IPv4 CIDR of /18 or larger."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper) instead of one per AZ (survives an AZ loss)."
  type        = bool
  default     = false
}

variable "kubernetes_version" {
  description = "EKS control plane version."
  type        = string
  default     = "1.31"

  validation {
    condition     = can(regex("^1\\.(3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be 1.30 or newer (the manifests are validated against 1.30)."
  }
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the EKS API from the internet (the pipeline's runners, the team). Empty: private endpoint only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.cluster_endpoint_public_access_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "Each entry must be a CIDR, and 0.0.0.0/0 is not allowed."
  }
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["m6i.large"]

  validation {
    condition     = length(var.node_instance_types) > 0
    error_message = "At least one instance type."
  }
}

variable "node_min_size" {
  description = "Fewest nodes (at least one per AZ)."
  type        = number
  default     = 3

  validation {
    condition     = var.node_min_size >= 3
    error_message = "node_min_size must be at least 3, one node per availability zone."
  }
}

variable "node_max_size" {
  description = "Most nodes the group (and the cluster autoscaler) may reach."
  type        = number
  default     = 9

  validation {
    condition     = var.node_max_size >= 3 && var.node_max_size <= 100
    error_message = "node_max_size must be between 3 and 100."
  }
}

variable "db_instance_class" {
  description = "RDS instance class. max_connections is set to 200 in the parameter group (see k8s/base/hpa.yml's connection budget); pick a class with memory for it."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = can(regex("^db\\.", var.db_instance_class))
    error_message = "db_instance_class must be an RDS class such as db.t4g.medium."
  }
}

variable "db_engine_version" {
  description = "PostgreSQL 16 minor version."
  type        = string
  default     = "16.4"

  validation {
    condition     = can(regex("^16\\.[0-9]+$", var.db_engine_version))
    error_message = "db_engine_version must be a PostgreSQL 16 version such as 16.4."
  }
}

variable "db_allocated_storage_gb" {
  description = "Initial storage in GiB (grows automatically up to four times this)."
  type        = number
  default     = 50

  validation {
    condition     = var.db_allocated_storage_gb >= 20 && var.db_allocated_storage_gb <= 16384
    error_message = "db_allocated_storage_gb must be between 20 and 16384."
  }
}

variable "db_multi_az" {
  description = "Standby replica in another AZ with automatic failover."
  type        = bool
  default     = true
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database (turn off deliberately before a destroy)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch logs (VPC flow logs, EKS control plane)."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention of at least one year (365, 400, 545, 731, ...)."
  }
}

variable "deploy_role_arn" {
  description = "IAM role the pipeline's deploy job assumes (GitHub OIDC); given cluster access to apply the manifests. Empty: none."
  type        = string
  default     = ""

  validation {
    condition     = var.deploy_role_arn == "" || can(regex("^arn:aws:iam::[0-9]{12}:role/", var.deploy_role_arn))
    error_message = "deploy_role_arn must be an IAM role ARN or empty."
  }
}

variable "jwt_jwks_url" {
  description = "JWKS of an existing identity provider whose tokens the gateway trusts (docs/DEPLOY.md: Keycloak, Auth0, Entra ID). Empty: a Cognito user pool is created (cognito.tf)."
  type        = string
  default     = ""

  validation {
    condition     = var.jwt_jwks_url == "" || can(regex("^https://\\S+$", var.jwt_jwks_url))
    error_message = "jwt_jwks_url must be an https:// URL or empty."
  }
}

variable "jwt_issuer" {
  description = "The `iss` of that provider's tokens; required with jwt_jwks_url, ignored without it."
  type        = string
  default     = ""

  validation {
    condition     = var.jwt_issuer == "" || can(regex("^https://\\S+$", var.jwt_issuer))
    error_message = "jwt_issuer must be an https:// URL or empty."
  }
}

variable "jwt_audience" {
  description = "The `aud` the gateway requires in that provider's tokens (the API's identifier or client ID); required with jwt_jwks_url, ignored without it."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^\\S{0,256}$", var.jwt_audience))
    error_message = "jwt_audience must be at most 256 characters without spaces."
  }
}

variable "jwt_roles_claim" {
  description = "Claim (or dotted path) holding the roles admin/customer. Empty: cognito:groups with the user pool, roles with an existing provider."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^\\S{0,256}$", var.jwt_roles_claim))
    error_message = "jwt_roles_claim must be at most 256 characters without spaces."
  }
}
