"""Below the web layer nothing loads Flask, even indirectly: each module of a service's rules,
use cases, stores, saga and background workers, and of veloz's core, data, net and telemetry
layers, imported alone in a fresh interpreter, leaves flask and werkzeug out of sys.modules.

import-linter (`make lint`, docs/LAYOUT.md) checks the same rule on the import graph; this test
checks what an import really loads, third-party packages' own imports included (the graph
stops at the first package outside ours)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB_FRAMEWORK = ("flask", "werkzeug")

# Every module of these names in a service package sits below the web: api.py and app.py
# are the only Flask-facing modules of a service.
SERVICE_MODULES = ("domain", "services", "store", "saga", "models", "schemas", "clients",
                   "config", "bootstrap", "reconciliation", "recovery", "sweeper")
SERVICE_PACKAGES = {"estoque": "estoque-service", "pagamentos": "pagamentos-service",
                    "pedidos": "pedidos-service"}
LOWER_VELOZ_LAYERS = ("core", "data", "net", "telemetry")


def _service_modules() -> list[str]:
    return [f"{package}.{name}" for package, folder in SERVICE_PACKAGES.items()
            for name in SERVICE_MODULES if (ROOT / folder / package / f"{name}.py").exists()]


def _lower_veloz_modules() -> list[str]:
    return [f"veloz.{layer}.{path.stem}" for layer in LOWER_VELOZ_LAYERS
            for path in sorted((ROOT / "libs" / "veloz" / layer).glob("*.py"))
            if path.stem != "__init__"]


def test_the_lists_find_modules():
    assert {"pedidos.saga", "estoque.services", "pagamentos.domain"} <= set(_service_modules())
    assert {"veloz.core.codec", "veloz.data.paging"} <= set(_lower_veloz_modules())


@pytest.mark.parametrize("module", _service_modules() + _lower_veloz_modules())
def test_importing_a_module_below_the_web_loads_no_web_framework(module):
    script = (f"import sys, {module}\n"
              f"print(' '.join(name for name in {WEB_FRAMEWORK!r} if name in sys.modules))")

    result = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(),
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], f"importing {module} loads {result.stdout.strip()}"
