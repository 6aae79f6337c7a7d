"""Production tokens come from an identity provider: terraform makes (or is told of) one and
outputs what the gateway needs, and the prod overlay hands exactly that to the gateway."""

import re

import pytest

from tests.deploy.conftest import REPO_ROOT, load_all_yaml, run, tool
from tests.deploy.test_terraform import blocks

GATEWAY_SETTINGS = {"JWT_JWKS_URL": "jwt_jwks_url", "JWT_ISSUER": "jwt_issuer",
                    "JWT_AUDIENCE": "jwt_audience", "JWT_ROLES_CLAIM": "jwt_roles_claim"}


@pytest.fixture(scope="module")
def overlays() -> dict[str, list[dict]]:
    rendered = {}
    for overlay in ("dev", "prod"):
        result = run([tool("kubectl"), "kustomize", "--load-restrictor", "LoadRestrictionsNone",
                      str(REPO_ROOT / "k8s" / "overlays" / overlay)])
        assert result.returncode == 0, result.stderr
        rendered[overlay] = load_all_yaml(result.stdout)
    return rendered


def gateway_env(objects: list[dict]) -> dict[str, dict]:
    gateway = next(o for o in objects
                   if o["kind"] == "Deployment" and o["metadata"]["name"] == "api-gateway")
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    return {variable["name"]: variable for variable in container.get("env", [])}


def test_terraform_outputs_every_setting_the_gateway_needs_to_trust_the_provider():
    outputs, variables = blocks("output"), blocks("variable")
    assert set(GATEWAY_SETTINGS.values()) <= set(outputs)
    assert {"jwt_jwks_url", "jwt_issuer", "jwt_audience", "jwt_roles_claim"} <= set(variables)
    cognito = (REPO_ROOT / "terraform" / "cognito.tf").read_text()
    assert 'resource "aws_cognito_user_pool" "users"' in cognito
    assert 'resource "aws_cognito_user_pool_client" "apps"' in cognito
    assert re.search(r'toset\(\["admin", "customer"\]\)', cognito), "the two roles as groups"


def test_the_prod_gateway_takes_its_tokens_from_the_provider_and_has_no_shared_secret(overlays):
    env = gateway_env(overlays["prod"])
    assert set(GATEWAY_SETTINGS) <= set(env)
    assert env["JWT_JWKS_URL"]["value"].startswith("https://")
    assert env["JWT_ROLES_CLAIM"]["value"] == "cognito:groups"
    assert "JWT_SECRET" not in env
    overlay_file = (REPO_ROOT / "k8s/overlays/prod/gateway-identity.yml").read_text()
    assert all(output in overlay_file for output in GATEWAY_SETTINGS.values()), \
        "the patch says which terraform output fills each value"


def test_dev_keeps_the_shared_secret_and_no_provider(overlays):
    env = gateway_env(overlays["dev"])
    assert "JWT_SECRET" in env
    assert "JWT_JWKS_URL" not in env


def test_only_the_prod_gateway_may_reach_the_provider_over_https(overlays):
    policies = {o["metadata"]["name"]: o for o in overlays["prod"]
                if o["kind"] == "NetworkPolicy"}
    policy = policies["api-gateway-identity-provider"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "api-gateway"}}
    assert policy["policyTypes"] == ["Egress"]
    [rule] = policy["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 443}]
    assert "10.0.0.0/8" in rule["to"][0]["ipBlock"]["except"]
    assert "api-gateway-identity-provider" not in {
        o["metadata"]["name"] for o in overlays["dev"] if o["kind"] == "NetworkPolicy"}
