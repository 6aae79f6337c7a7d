"""README's "Try it" commands, run as written against a platform of their own (fresh
databases, `make up`'s payment decline rate), answer what the README says they answer."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import start_platform
from veloz.dev.devstack import jwt_secret

REPO_ROOT = Path(__file__).resolve().parents[2]
README_GATEWAY = "http://localhost:5000"
# Every answer's status on a line of its own after its body; the commands stay as written.
STATUS_AFTER_EACH_ANSWER = "curl() { command curl -w '\\n@status %{http_code}\\n' \"$@\"; }\n"


def try_it_commands() -> str:
    """The bash blocks of README's "Try it" section, in order."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL))


@pytest.fixture(scope="module")
def readme_platform(postgres_server_url, tmp_path_factory):
    """`make up`'s platform as far as the examples can tell: the development token secret
    that `make token` signs with, and the default decline rate for payments without a
    test card."""
    platform = start_platform(postgres_server_url, tmp_path_factory, only=None,
                              database_suffix="_readme", JWT_SECRET=jwt_secret(),
                              PAYMENT_DECLINE_RATE="0.1")
    yield platform
    platform.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (make test "
                    "installs it on Debian as root)")
def test_try_it_answers_as_the_readme_says(readme_platform, tmp_path):
    script = (try_it_commands().replace(README_GATEWAY, readme_platform.url("api-gateway"))
              .replace("/tmp/headers", str(tmp_path / "headers")))
    ran = subprocess.run(["bash", "-c", STATUS_AFTER_EACH_ANSWER + script], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    statuses = [int(code) for code in re.findall(r"^@status (\d+)$", ran.stdout, re.M)]

    health, catalog, new_item, paid, listed, declined, keyed, again, *rest = statuses
    assert [health, catalog, new_item, paid, listed, declined] == [200, 200, 201, 201, 200, 402]
    assert keyed == again  # one order, the same answer twice
    assert keyed in (201, 402)
    refused, own_orders, *pages, cancelled, events = rest
    assert [refused, own_orders] == [403, 200]
    assert pages == [200, 200]  # three orders, two a page
    assert [cancelled, events] == [200, 200]
    assert '"status":"cancelled"' in ran.stdout.replace(" ", "")
