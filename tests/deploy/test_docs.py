"""The deployment docs say what the Compose files do: every service they run is named, every
address they give is one Compose publishes, and every setting of .env.example is explained."""

import re

import pytest
import yaml

from tests.deploy.conftest import REPO_ROOT

DOCS = {path.name: path.read_text() for path in (REPO_ROOT / "docs").glob("*.md")}
README = (REPO_ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def section(text: str, start: str, end: str) -> str:
    """From `start` to the next `end`, or to the end of the text."""
    begin = text.index(start)
    finish = text.find(end, begin + len(start))
    return text[begin:] if finish < 0 else text[begin:finish]


def deploy_compose_steps() -> str:
    return section(DOCS["DEPLOY.md"], "## Docker Compose", "\n## ")


def published_ports(compose: dict) -> set[str]:
    """The host side of each mapping, its default where a variable moves it
    (`${GATEWAY_PORT:-5000}:5000` is 5000)."""
    return {re.sub(r"^\$\{\w+:-(\d+)\}$", r"\1", str(mapping).rsplit(":", 1)[0])
            for service in compose["services"].values()
            for mapping in service.get("ports", [])}


def test_every_single_word_compose_service_is_named_in_the_steps_and_readme(compose):
    """The platform's own services are described in words ("the gateway", "the sweeper");
    the others (PostgreSQL, Prometheus, Tempo, ...) by name."""
    others = [name for name in compose["services"] if "-" not in name]
    assert "tempo" in others
    steps, readme = deploy_compose_steps().lower(), section(README, "## Deploying", "\n## ")
    assert [name for name in others if name not in steps] == []
    assert [name for name in others if name != "loadgen" and name not in readme.lower()] == []


def test_the_docs_give_compose_addresses_only_for_published_ports(compose):
    published = published_ports(compose)
    compose_texts = [deploy_compose_steps(),
                     section(DOCS["OBSERVABILITY.md"], "**Docker Compose**", "mount:")]
    named = {port for text in compose_texts
             for port in re.findall(r"localhost:(\d+)", text)}
    assert named == published


def test_the_docs_say_unpublished_alertmanager_is_reached_from_inside(compose):
    assert "ports" not in compose["services"]["alertmanager"]
    for text in (deploy_compose_steps(),
                 section(DOCS["OBSERVABILITY.md"], "**Docker Compose**", "mount:")):
        assert "docker compose exec alertmanager amtool" in text


def test_every_setting_of_env_example_is_explained_in_a_doc():
    names = re.findall(r"^([A-Z][A-Z0-9_]*)=", (REPO_ROOT / ".env.example").read_text(),
                       re.MULTILINE)
    everything = README + "".join(DOCS.values())
    assert names
    assert [name for name in names if f"`{name}`" not in everything] == []


def test_the_load_token_lifetime_is_explained():
    assert "--ttl 86400" in (REPO_ROOT / ".env.example").read_text()
    assert "--ttl 86400" in deploy_compose_steps()
    assert "JWT_MAX_LIFETIME_SECONDS" in deploy_compose_steps()
