"""The platform as real server processes on free ports, with its own `_e2e` databases."""

import pytest
import requests

from veloz.dev.devstack import Platform, free_service_ports

FAST_WORKERS = {
    "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4", "LOG_LEVEL": "INFO",
    "PAYMENT_DECLINE_RATE": "0", "SWEEP_INTERVAL_SECONDS": "0.2",
}


def start_platform(server_url, tmp_path_factory, only, database_suffix="_e2e",
                   **env) -> Platform:
    run_dir = tmp_path_factory.mktemp("platform")
    platform = Platform(server_url=server_url, ports=free_service_ports(),
                        env={**FAST_WORKERS, **env}, database_suffix=database_suffix,
                        log_dir=run_dir / "logs", run_dir=run_dir, only=only)
    platform.migrate(fresh=True)
    platform.clear_metrics()
    platform.start()
    return platform


@pytest.fixture(scope="module")
def stock_and_payments(postgres_server_url, tmp_path_factory):
    platform = start_platform(postgres_server_url, tmp_path_factory,
                              only={"estoque-service", "pagamentos-service"})
    yield platform
    platform.stop()


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


JWT_TEST_SECRET = "e2e-" + "s" * 40


@pytest.fixture(scope="module")
def platform(request, postgres_server_url, tmp_path_factory):
    """All four services, workers included, behind the gateway. A test module may add
    environment with a module-level PLATFORM_ENV dict."""
    platform = start_platform(
        postgres_server_url, tmp_path_factory, only=None,
        JWT_SECRET=JWT_TEST_SECRET, RATE_LIMIT_DEFAULT="20/minute",
        RECOVERY_GRACE_SECONDS="2", RECOVERY_INTERVAL_SECONDS="0.5",
        UPSTREAM_READ_TIMEOUT_SECONDS="2", UPSTREAM_RETRIES="1",
        **getattr(request.module, "PLATFORM_ENV", {}))
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def gateway(platform):
    return platform.url("api-gateway")


def mint(role: str, subject: str) -> str:
    from gateway.auth import TokenAuthority
    from gateway.config import JwtSettings

    authority = TokenAuthority(JwtSettings(jwt_secret=JWT_TEST_SECRET))
    return authority.mint(subject, [role])


@pytest.fixture(scope="session")
def bearer():
    """Authorization headers for a role and subject, signed like the gateway expects."""
    return lambda role, subject: {"Authorization": f"Bearer {mint(role, subject)}"}


@pytest.fixture(scope="module")
def admin():
    return {"Authorization": f"Bearer {mint('admin', 'ops')}"}


@pytest.fixture
def customer(request):
    """A customer of its own, so rate limits and ownership never leak between tests."""
    return {"Authorization": f"Bearer {mint('customer', f'cust-{request.node.name}')}"}
