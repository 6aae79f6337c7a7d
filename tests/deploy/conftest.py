"""Shared by the deployment tests: where the repository and the validator tools are."""

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


def load_all_yaml(text: str) -> list[dict]:
    return [document for document in yaml.safe_load_all(text) if document]
