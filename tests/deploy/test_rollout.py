"""deploy/rollout.sh against a fake `kubectl`, `kustomize` and `curl` on PATH: every call is
recorded, and each fake answers as a cluster and a gateway would. A failed step after the
apply (rollout or smoke test) must end in `kubectl rollout undo` to the earlier revisions; a
good release must not; a failed migration must change no Deployment."""

import json
import os
import shlex
import subprocess

import pytest

from tests.deploy.conftest import REPO_ROOT, tool

DEPLOYMENTS = ["estoque-service", "pagamentos-service", "pedidos-service", "api-gateway",
               "estoque-sweeper", "pedidos-recovery"]

FAKE_KUBECTL = r'''#!/usr/bin/env python3
"""A cluster: revision 4 of every Deployment; FAKE_FAIL names a step that fails."""
import os, shlex, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(shlex.join(["kubectl", *(a.replace("\n", " ") for a in args)]) + "\n")
fail = os.environ.get("FAKE_FAIL", "")
if "kustomize" in args:
    print("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: rendered}")
elif "get" in args and "deployment" in args:
    print("4")
elif "wait" in args:
    sys.exit(1 if fail == "migration" else 0)
elif "rollout" in args and "status" in args:
    sys.exit(1 if fail == "rollout" and "deployment/pedidos-service" in args else 0)
elif "exec" in args:
    if fail == "mint":  # a gateway that trusts an identity provider mints no token
        sys.exit(1)
    print("fake-admin-token")
'''

FAKE_KUSTOMIZE = r'''#!/usr/bin/env python3
import os, shlex, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(shlex.join(["kustomize", *(a.replace("\n", " ") for a in sys.argv[1:])]) + "\n")
'''

FAKE_CURL = r'''#!/usr/bin/env python3
"""The gateway: answers by method and path, in the real answers' shapes (a placed order is
{"order", "payment"}, a declined one a problem carrying the order); FAKE_FAIL=smoke makes the
payment decline; FAKE_FAIL=blink refuses the first FAKE_BLINKS connections (a port-forward
whose pod was just replaced)."""
import json, os, shlex, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(shlex.join(["curl", *(a.replace("\n", " ") for a in args)]) + "\n")
if os.environ.get("FAKE_FAIL") == "blink":
    refused = os.environ["FAKE_LOG"] + ".refused"
    count = int(open(refused).read()) if os.path.exists(refused) else 0
    if count < int(os.environ.get("FAKE_BLINKS", "2")):
        open(refused, "w").write(str(count + 1))
        sys.stderr.write("curl: (7) Failed to connect: Connection refused\n")
        sys.exit(7)
url, method = args[-1], args[args.index("--request") + 1]
path = url.split("://", 1)[1].split("/", 1)[1]
declined = os.environ.get("FAKE_FAIL") == "smoke"
payment = {"id": 3, "status": "declined" if declined else "approved"}
answers = {
    ("GET", "health"): (200, {"status": "healthy"}),
    ("GET", "items"): (200, []),
    ("POST", "items"): (201, {"id": 7}),
    ("POST", "orders"): (402, {"status": 402, "title": "Payment declined",
                               "order": {"id": 9, "status": "payment_declined"},
                               "payment": payment}) if declined
                        else (201, {"order": {"id": 9, "status": "paid"}, "payment": payment}),
    ("POST", "orders/9/cancel"): (200, {"id": 9, "status": "cancelled"}),
}
status, body = answers.get((method, path), (404, {}))
with open(args[args.index("--output") + 1], "w") as out:
    json.dump(body, out)
sys.stdout.write(str(status))
'''


@pytest.fixture
def fake_cluster(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, source in (("kubectl", FAKE_KUBECTL), ("kustomize", FAKE_KUSTOMIZE),
                         ("curl", FAKE_CURL)):
        (bin_dir / name).write_text(source)
        (bin_dir / name).chmod(0o755)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    return bin_dir, overlay, tmp_path / "calls.log"


def roll_out(fake_cluster, fail: str = "",
             **extra_env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir, overlay, log = fake_cluster
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(log),
           "FAKE_FAIL": fail, "IMAGE_REPOSITORY": "ghcr.io/acme/veloz",
           "GATEWAY_URL": "https://api.test", "NAMESPACE": "pedidos-veloz", **extra_env}
    if "SMOKE_TOKEN" not in extra_env:
        env.pop("SMOKE_TOKEN", None)
    result = subprocess.run([tool("bash"), str(REPO_ROOT / "deploy" / "rollout.sh"),
                             str(overlay), "abc123"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    return result, log.read_text().splitlines() if log.exists() else []


def undos(calls: list[str]) -> list[str]:
    return [call for call in calls if call.startswith("kubectl") and " rollout undo " in call]


def called(calls: list[str], program: str) -> list[list[str]]:
    return [shlex.split(call) for call in calls if call.startswith(program + " ")]


def test_a_good_release_is_applied_smoke_tested_and_never_undone(fake_cluster):
    result, calls = roll_out(fake_cluster)

    assert result.returncode == 0, result.stderr
    assert not undos(calls)
    assert any(c.startswith("kustomize edit set image") and
               "pedidos-veloz/api-gateway=ghcr.io/acme/veloz/api-gateway:abc123" in c
               for c in calls)
    statuses = [c for c in calls if " rollout status deployment/" in c]
    assert len(statuses) == len(DEPLOYMENTS)
    order = next(c for c in called(calls, "curl") if c[-1] == "https://api.test/orders")
    body = json.loads(order[order.index("--data") + 1])
    assert body["payment"]["card_number"] == "4242424242424242"
    assert any(c.endswith("https://api.test/orders/9/cancel") for c in calls)


def test_with_a_provider_issued_smoke_token_the_smoke_test_uses_it_and_mints_none(
        fake_cluster):
    result, calls = roll_out(fake_cluster, SMOKE_TOKEN="provider-issued-admin-token")

    assert result.returncode == 0, result.stderr
    assert not [c for c in calls if c.startswith("kubectl") and " exec " in c]
    smoke_calls = called(calls, "curl")
    assert smoke_calls
    assert all("Authorization: Bearer provider-issued-admin-token" in c for c in smoke_calls)


def test_without_any_admin_token_the_smoke_test_checks_anonymous_reads_and_undoes_nothing(
        fake_cluster):
    result, calls = roll_out(fake_cluster, fail="mint")

    assert result.returncode == 0, result.stderr
    assert not undos(calls)
    urls = [c[-1] for c in called(calls, "curl")]
    assert urls == ["https://api.test/health", "https://api.test/items"]
    assert "checking anonymous reads only" in result.stdout + result.stderr


def test_a_failed_smoke_test_rolls_every_deployment_back_to_its_earlier_revision(fake_cluster):
    result, calls = roll_out(fake_cluster, fail="smoke")

    assert result.returncode == 1
    assert "POST /orders" in result.stderr
    assert sorted(undos(calls)) == sorted(
        f"kubectl --namespace pedidos-veloz rollout undo deployment/{name} --to-revision=4"
        for name in DEPLOYMENTS)
    apply_all = calls.index(next(c for c in calls if c.startswith("kubectl apply")
                                 and "--selector" not in c))
    assert apply_all < calls.index(undos(calls)[0])


def test_a_rollout_that_never_becomes_ready_is_undone(fake_cluster):
    result, calls = roll_out(fake_cluster, fail="rollout")

    assert result.returncode == 1
    assert len(undos(calls)) == len(DEPLOYMENTS)
    assert not any(c.startswith("curl") for c in calls)


def test_a_gateway_that_blinks_is_asked_again_when_smoke_retries_allow_it(fake_cluster):
    result, calls = roll_out(fake_cluster, fail="blink", SMOKE_RETRIES="3")

    assert result.returncode == 0, result.stderr
    assert not undos(calls)
    health = [c for c in called(calls, "curl") if c[-1] == "https://api.test/health"]
    assert len(health) == 3  # refused twice, then answered
    assert "reached no gateway; again in 2 s (2 of 3)" in result.stderr


def test_without_smoke_retries_a_gateway_that_does_not_answer_is_rolled_back(fake_cluster):
    result, calls = roll_out(fake_cluster, fail="blink")

    assert result.returncode == 1
    assert len(undos(calls)) == len(DEPLOYMENTS)
    assert "GET /health answered 000" in result.stderr


def test_a_failed_migration_stops_before_any_deployment_changes(fake_cluster):
    result, calls = roll_out(fake_cluster, fail="migration")

    assert result.returncode == 1
    applies = [c for c in calls if c.startswith("kubectl apply")]
    assert applies == [next(c for c in applies if "--selector" in c)]
    assert "app.kubernetes.io/component notin (app,worker)" in applies[0]
    assert not undos(calls)


def test_deploy_scripts_pass_shellcheck():
    scripts = [REPO_ROOT / "deploy" / "rollout.sh", REPO_ROOT / "deploy" / "images.sh",
               REPO_ROOT / "deploy" / "podman.sh",
               REPO_ROOT / "deploy" / "image" / "entrypoint.sh",
               *sorted((REPO_ROOT / "deploy" / "smoke").glob("*.sh"))]
    result = subprocess.run([tool("shellcheck"), *map(str, scripts)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_the_fakes_answer_like_the_real_tools_would(fake_cluster):
    """Guard against a fake that cannot fail: the smoke fake really declines when told to."""
    bin_dir, _, log = fake_cluster
    out = fake_cluster[1] / "body.json"
    env = {**os.environ, "FAKE_LOG": str(log), "FAKE_FAIL": "smoke"}
    status = subprocess.run([str(bin_dir / "curl"), "--request", "POST", "--output", str(out),
                             "https://api.test/orders"], env=env, capture_output=True,
                            text=True, check=True).stdout
    assert (status, json.loads(out.read_text())["order"]["status"]) == (
        "402", "payment_declined")
