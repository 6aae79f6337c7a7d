"""The platform in one process for contract tests: estoque, pagamentos and pedidos served on
real ports, each with its own migrated database, and the gateway in front of them driven
in-process (WSGI)."""

import json

import pytest

from estoque.app import create_app as create_estoque
from estoque.config import EstoqueSettings
from gateway.app import create_app as create_gateway
from gateway.auth import TokenAuthority
from gateway.config import GatewaySettings
from pagamentos.app import create_app as create_pagamentos
from pagamentos.config import PagamentosSettings
from pedidos.app import create_app as create_pedidos
from pedidos.config import PedidosSettings
from veloz.dev.testing import migrated_test_database, served

JWT_SECRET = "contract-tests-only-" + "s" * 32


@pytest.fixture(scope="session")
def databases(postgres_server_url) -> dict[str, str]:
    return {package: migrated_test_database(postgres_server_url, package, f"contract_{package}")
            for package in ("estoque", "pagamentos", "pedidos")}


@pytest.fixture(scope="session")
def services(databases):
    """{name: app} of the three services, each listening on 127.0.0.1."""
    apps = {"estoque": create_estoque(EstoqueSettings(database_url=databases["estoque"])),
            "pagamentos": create_pagamentos(PagamentosSettings(
                database_url=databases["pagamentos"], payment_decline_rate=0.0))}
    with served(apps["estoque"]) as estoque_url, served(apps["pagamentos"]) as pagamentos_url:
        apps["pedidos"] = create_pedidos(PedidosSettings(
            database_url=databases["pedidos"], estoque_url=estoque_url,
            pagamentos_url=pagamentos_url, upstream_retries=0))
        with served(apps["pedidos"]) as pedidos_url:
            apps["urls"] = {"estoque": estoque_url, "pagamentos": pagamentos_url,
                            "pedidos": pedidos_url}
            yield apps
    for name in ("estoque", "pagamentos", "pedidos"):
        apps[name].extensions["database"].dispose()


@pytest.fixture(scope="session")
def gateway(services):
    urls = services["urls"]
    return create_gateway(GatewaySettings(
        jwt_secret=JWT_SECRET, estoque_url=urls["estoque"], pedidos_url=urls["pedidos"],
        pagamentos_url=urls["pagamentos"], openapi_cache_seconds=3600,
        rate_limit_default="100000/minute", rate_limit_anonymous="100000/minute"))


@pytest.fixture(scope="session")
def bearer(gateway):
    authority = TokenAuthority(gateway.extensions["settings"])
    return lambda role: {"Authorization": f"Bearer {authority.mint(f'contract-{role}', [role])}"}


@pytest.fixture(scope="session")
def documents(services, gateway) -> dict[str, dict]:
    """Each service's OpenAPI document and the gateway's merged one, as clients read them."""
    apps = {name: services[name] for name in ("estoque", "pagamentos", "pedidos")}
    return {name: json.loads(app.test_client().get("/openapi.json").data)
            for name, app in {**apps, "gateway": gateway}.items()}
