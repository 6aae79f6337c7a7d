"""terraform/: formatted, checkov-clean, pinned, with described and validated variables.
(`terraform init -backend=false && terraform validate` needs the providers, so it runs in the
pipeline, where they can be downloaded.)"""

import json
import re

from tests.deploy.conftest import REPO_ROOT, run, tool

TERRAFORM = REPO_ROOT / "terraform"


def blocks(kind: str) -> dict[str, str]:
    """`variable "x" { ... }` blocks (top-level, closed by a `}` at column 0) by name."""
    text = "\n".join(path.read_text() for path in sorted(TERRAFORM.glob("*.tf")))
    return dict(re.findall(rf'^{kind} "([^"]+)" \{{\n(.*?)^\}}', text, re.S | re.M))


def test_terraform_files_are_formatted():
    result = run([tool("terraform"), "fmt", "-recursive", "-check", "-diff", str(TERRAFORM)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_fails_nothing_and_every_skip_says_why():
    result = run([tool("checkov"), "--directory", str(TERRAFORM), "--framework", "terraform",
                  "--skip-download", "--compact", "--output", "json"])
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert sum(r["summary"]["resource_count"] for r in reports) > 50
    failed = [f"{c['check_id']} {c['resource']}" for r in reports
              for c in r["results"]["failed_checks"]]
    assert not failed, "\n".join(failed)
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    assert all(len(c["check_result"].get("suppress_comment", "")) > 20 for c in skipped)


def test_providers_and_terraform_are_pinned_to_exact_versions():
    versions = (TERRAFORM / "versions.tf").read_text()
    pins = re.findall(r'^\s+version\s*=\s*"([^"]+)"', versions, re.M)
    assert pins, "no provider versions"
    assert all(re.fullmatch(r"= \d+\.\d+\.\d+", pin) for pin in pins), pins
    assert re.search(r'required_version\s*=\s*">= 1\.\d+\.\d+, < 2\.0\.0"', versions)
    assert 'backend "s3"' in versions


def test_every_variable_is_described_and_every_non_boolean_one_validated():
    variables = blocks("variable")
    assert {"region", "vpc_cidr", "db_multi_az", "db_deletion_protection"} <= set(variables)
    for name, body in variables.items():
        assert "description" in body, name
        assert "validation" in body or "type        = bool" in body, name


def test_outputs_tell_how_to_reach_the_cluster_and_the_database():
    outputs = blocks("output")
    assert {"cluster_name", "kubeconfig_command", "db_endpoint", "db_address"} <= set(outputs)
    assert "aws eks update-kubeconfig" in outputs["kubeconfig_command"]


def test_the_database_is_private_encrypted_backed_up_postgres_16():
    rds = (TERRAFORM / "rds.tf").read_text()
    for setting in ('engine         = "postgres"', "storage_encrypted     = true",
                    "publicly_accessible    = false", "multi_az               = var.db_multi_az",
                    "deletion_protection       = var.db_deletion_protection",
                    "backup_retention_period   = var.db_backup_retention_days",
                    'family = "postgres16"'):
        assert setting in rds, setting
