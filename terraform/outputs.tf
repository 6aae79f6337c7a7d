output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.main.name
}

output "kubeconfig_command" {
  description = "Writes a kubeconfig entry for the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${aws_eks_cluster.main.name}"
}

output "db_endpoint" {
  description = "host:port of the RDS instance."
  value       = aws_db_instance.main.endpoint
}

output "db_address" {
  description = "Host name of the RDS instance: the externalName of k8s/overlays/prod/rds-service.yml."
  value       = aws_db_instance.main.address
}

output "db_master_secret_arn" {
  description = "Secrets Manager secret holding the master user's password (rotated by RDS)."
  value       = aws_db_instance.main.master_user_secret[0].secret_arn
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.main.id
}

output "ebs_csi_role_arn" {
  description = "IRSA role of the EBS CSI controller."
  value       = aws_iam_role.ebs_csi.arn
}

output "jwt_jwks_url" {
  description = "JWT_JWKS_URL of the gateway: env of k8s/overlays/prod/gateway-identity.yml."
  value       = local.jwt_jwks_url

  precondition {
    condition     = local.jwt_issuer != "" && local.jwt_audience != ""
    error_message = "Set jwt_issuer and jwt_audience together with jwt_jwks_url."
  }
}

output "jwt_issuer" {
  description = "JWT_ISSUER of the gateway: env of k8s/overlays/prod/gateway-identity.yml."
  value       = local.jwt_issuer
}

output "jwt_audience" {
  description = "JWT_AUDIENCE of the gateway (with Cognito: the app client ID, the ID token's aud)."
  value       = local.jwt_audience
}

output "jwt_roles_claim" {
  description = "JWT_ROLES_CLAIM of the gateway: env of k8s/overlays/prod/gateway-identity.yml."
  value       = local.jwt_roles_claim
}

output "cognito_user_pool_id" {
  description = "The user pool (empty with an existing provider): create users and add them to the groups admin or customer."
  value       = local.create_user_pool ? aws_cognito_user_pool.users[0].id : ""
}
