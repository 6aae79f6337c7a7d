# Who signs the tokens the gateway trusts. By default a Cognito user pool beside the cluster,
# with the groups `admin` and `customer` (the roles of the HTTP contract, carried in the ID
# token's `cognito:groups`) and an app client without a secret for the web and mobile apps.
# Set var.jwt_jwks_url (with var.jwt_issuer and var.jwt_audience) to trust an existing
# provider instead (Keycloak, Auth0, Entra ID): then nothing here is created. Either way the
# outputs jwt_* are what the prod overlay's k8s/overlays/prod/gateway-identity.yml needs.
locals {
  create_user_pool = var.jwt_jwks_url == ""
  jwt_issuer       = local.create_user_pool ? "https://${aws_cognito_user_pool.users[0].endpoint}" : var.jwt_issuer
  jwt_jwks_url     = local.create_user_pool ? "${local.jwt_issuer}/.well-known/jwks.json" : var.jwt_jwks_url
  # Cognito's ID token names the app client in `aud` (its access token has no `aud`).
  jwt_audience    = local.create_user_pool ? aws_cognito_user_pool_client.apps[0].id : var.jwt_audience
  jwt_roles_claim = var.jwt_roles_claim != "" ? var.jwt_roles_claim : (local.create_user_pool ? "cognito:groups" : "roles")
}

resource "aws_cognito_user_pool" "users" {
  count = local.create_user_pool ? 1 : 0

  name                = "${local.name}-users"
  deletion_protection = "ACTIVE"

  # People are invited (an admin creates them and puts them in a group): a self sign-up
  # would need a trigger that adds every new user to `customer`.
  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  mfa_configuration        = "OPTIONAL"

  software_token_mfa_configuration {
    enabled = true
  }

  password_policy {
    minimum_length                   = 12
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = false
    temporary_password_validity_days = 3
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }
}

resource "aws_cognito_user_group" "roles" {
  for_each = local.create_user_pool ? toset(["admin", "customer"]) : toset([])

  name         = each.key
  user_pool_id = aws_cognito_user_pool.users[0].id
  description  = "Role ${each.key} of the Pedidos Veloz API (the gateway reads cognito:groups)."
}

resource "aws_cognito_user_pool_client" "apps" {
  count = local.create_user_pool ? 1 : 0

  name         = "${local.name}-apps"
  user_pool_id = aws_cognito_user_pool.users[0].id

  # A public client (browsers and phones keep no secret): SRP sign-in and refresh tokens.
  generate_secret               = false
  explicit_auth_flows           = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true

  # Well under the gateway's JWT_MAX_LIFETIME_SECONDS (one day).
  id_token_validity      = 60
  access_token_validity  = 60
  refresh_token_validity = 30
  token_validity_units {
    id_token      = "minutes"
    access_token  = "minutes"
    refresh_token = "days"
  }
}
