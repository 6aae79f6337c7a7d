"""The one Dockerfile of the four images: hadolint-clean, multi-stage on a pinned slim Python
base taken as a build argument, non-root, with a HEALTHCHECK; SERVICE picks a line of
deploy/image/services, which serves as `make up` does. The compose stand-ins' Containerfile
is linted too."""

import importlib.util
import re

import pytest
import yaml

from tests.deploy.conftest import REPO_ROOT, run, table_rows, tool
from veloz.dev.devstack import SERVICES

DOCKERFILE = REPO_ROOT / "Dockerfile"
STANDINS = REPO_ROOT / "deploy" / "standins" / "Containerfile"
SPECS = {spec.name: spec for spec in SERVICES}


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def test_hadolint_finds_nothing_in_the_dockerfile_or_the_standins():
    result = run([tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE),
                  str(STANDINS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_there_is_one_dockerfile_and_no_service_keeps_its_own():
    assert DOCKERFILE.exists()
    assert not list(REPO_ROOT.glob("*/Dockerfile"))


def test_dockerfile_builds_a_non_root_multi_stage_image(dockerfile):
    assert re.search(r"^ARG BASE_IMAGE=python:3\.\d+\.\d+-slim-\w+$", dockerfile, re.M)
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    build_stage, final_stage = dockerfile.split("\nFROM ${BASE_IMAGE}\n")
    assert "pip install" not in final_stage  # nothing is built in the image that runs
    assert re.search(r"^USER 10001:10001$", final_stage, re.M)
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[", final_stage, re.M)
    assert 'ENTRYPOINT ["/opt/veloz/entrypoint.sh"]' in final_stage
    assert re.search(r"^CMD \[\"serve\"\]$", final_stage, re.M)
    assert "-c constraints.txt" in build_stage
    # SERVICE comes after the dependencies: the four builds share that step.
    assert build_stage.index("pip install") < build_stage.index("ARG SERVICE")
    assert "VELOZ_SERVICE=${SERVICE}" in final_stage


def test_the_dev_layer_and_tests_stay_out_of_the_images(dockerfile):
    assert "rm -rf /app/veloz/dev" in dockerfile  # even when .dockerignore is not honoured
    assert 'cp -R veloz "service/$package" /app/' in dockerfile  # the package, not its folder


def test_the_table_serves_each_service_as_make_up_does():
    rows = table_rows()
    assert set(rows) == set(SPECS)
    for service, (package, port, metrics, *command) in rows.items():
        spec = SPECS[service]
        assert (package, int(port), command) == (spec.package, spec.port,
                                                 spec.server_command()), service
        assert (REPO_ROOT / service / package / "__init__.py").exists(), service
        # Only the gateway has a second listener, for /metrics alone.
        assert metrics == ("9102" if spec.edge else "-"), service


def test_the_healthcheck_finds_the_port_in_the_table(monkeypatch):
    loaded = importlib.util.spec_from_file_location(
        "image_healthcheck", REPO_ROOT / "deploy" / "image" / "healthcheck.py")
    healthcheck = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(healthcheck)
    monkeypatch.delenv("BIND", raising=False)
    monkeypatch.setenv("VELOZ_SERVICE", "estoque-service")

    assert healthcheck.default_port() == "5003"
    assert healthcheck.service_port("api-gateway") == "5000"
    assert healthcheck.service_port("nonexistent") == ""
    monkeypatch.setenv("BIND", "0.0.0.0:6000")
    assert healthcheck.default_port() == "6000"


def test_compose_builds_each_image_from_the_one_dockerfile():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        if "build" not in service:
            continue
        build = service["build"]
        image_of = service["image"].rpartition("/")[2].partition(":")[0]
        assert (build["context"], build["dockerfile"]) == (".", "Dockerfile"), name
        assert build["args"] == {"SERVICE": image_of}, name
        assert image_of in SPECS, name


def test_dockerignore_lets_in_only_what_the_images_copy():
    lines = [line for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {"pyproject.toml", "constraints.txt", "libs/veloz", "deploy/image",
              *(f"{service}/{package}" for service, (package, *_) in table_rows().items())}
    assert allowed == copied
    # Re-excluded after `!libs/veloz/`: the dev layer never enters the build context.
    assert lines.index("libs/veloz/dev/") > lines.index("!libs/veloz/")


def test_the_entrypoint_reads_the_table_it_is_shipped_with():
    entrypoint = (REPO_ROOT / "deploy" / "image" / "entrypoint.sh").read_text()
    assert "TABLE=/opt/veloz/services" in entrypoint
    assert "COPY deploy/image/ /opt/veloz/" in DOCKERFILE.read_text()
