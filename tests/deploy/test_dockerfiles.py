"""The four Dockerfiles: hadolint-clean, multi-stage on a pinned slim Python base taken as a
build argument, non-root, with a HEALTHCHECK, serving as `make up` does."""

import json
import re

import pytest

from tests.deploy.conftest import REPO_ROOT, run, tool
from veloz.dev.devstack import SERVICES

PACKAGES = {"api-gateway": "gateway", "pedidos-service": "pedidos",
            "pagamentos-service": "pagamentos", "estoque-service": "estoque"}
SERVED = {spec.name: spec.server_command() for spec in SERVICES}
DOCKERFILES = [REPO_ROOT / service / "Dockerfile" for service in PACKAGES]


def test_hadolint_finds_nothing_in_any_dockerfile():
    result = run([tool("hadolint"), "--failure-threshold", "info",
                  *map(str, DOCKERFILES)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", PACKAGES)
def test_dockerfile_builds_a_non_root_multi_stage_image_run_like_make_up(service):
    text = (REPO_ROOT / service / "Dockerfile").read_text()
    package = PACKAGES[service]

    assert re.search(r"^ARG BASE_IMAGE=python:3\.\d+\.\d+-slim-\w+$", text, re.M)
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    final_stage = text.split("\nFROM ${BASE_IMAGE}\n")[1]
    assert "pip install" not in final_stage  # nothing is built in the image that runs
    assert re.search(r"^USER 10001:10001$", final_stage, re.M)
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[", final_stage, re.M)
    assert f"COPY {service}/{package} /app/{package}" in text
    assert f"CMD {json.dumps(SERVED[service])}" in final_stage  # as `make up` serves it
    assert "-c constraints.txt" in text


def test_dockerignore_lets_in_only_what_the_images_copy():
    lines = [line for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {"pyproject.toml", "constraints.txt", "libs/veloz", "deploy/image",
              *(f"{service}/{package}" for service, package in PACKAGES.items())}
    assert allowed == copied
