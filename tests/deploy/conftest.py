"""Shared by the deployment tests: where the repository and the validator tools are; podman
as `make images` runs it, and the images it builds (once per session)."""

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# `make deploy-tools` installs the heavy validators here, away from the project's .venv.
TOOLS_BIN = REPO_ROOT / ".local" / "deploy-tools" / "venv" / "bin"
NODE_BIN = REPO_ROOT / ".local" / "deploy-tools" / "node" / "node_modules" / ".bin"


def tool(name: str) -> str:
    """The path of a validator; skipped when absent, except in CI where `make test` installs it."""
    for folder in (TOOLS_BIN, NODE_BIN):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: run `make deploy-tools`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError  # unreachable; pytest.skip raises


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a validator from the repository root, capturing its output as text."""
    kwargs.setdefault("timeout", 600)
    return subprocess.run(command, cwd=kwargs.pop("cwd", REPO_ROOT), capture_output=True,
                          text=True, check=False, **kwargs)


@functools.cache
def podman_flags() -> tuple[str, ...]:
    """The global flags every script here gives podman (deploy/podman.sh: runc, and the
    overlay or the vfs store)."""
    chosen = run(["bash", "deploy/podman.sh", "flags"], timeout=60)
    assert chosen.returncode == 0, chosen.stderr
    return tuple(chosen.stdout.split())


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """podman with the flags and settings of `make images` (deploy/images.sh)."""
    env = {**os.environ, "CONTAINERS_CONF": str(REPO_ROOT / "deploy" / "containers.conf")}
    return run(["podman", *podman_flags(), *args], timeout=timeout, env=env)


IMAGE_TAG = os.environ.get("IMAGE_TAG", "local")  # another tag keeps a session's images apart
IMAGE_SERVICES = ("api-gateway", "pedidos-service", "pagamentos-service", "estoque-service")


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """`make images`, once per session: the image tests and the compose test share them."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman runc mmdebstrap; "
                    ".ci/run installs them)")
    built = run(["make", "--no-print-directory", "images", f"IMAGE_TAG={IMAGE_TAG}"],
                timeout=1800)
    assert built.returncode == 0, built.stdout + built.stderr
    return {service: f"localhost/pedidos-veloz/{service}:{IMAGE_TAG}"
            for service in IMAGE_SERVICES}


def table_rows() -> dict[str, list[str]]:
    """deploy/image/services as the entrypoint reads it: service -> [package, port, metrics
    port, *command words]."""
    table = REPO_ROOT / "deploy" / "image" / "services"
    rows = [line.split() for line in table.read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    return {row[0]: row[1:] for row in rows}


def load_all_yaml(text: str) -> list[dict]:
    return [document for document in yaml.safe_load_all(text) if document]
