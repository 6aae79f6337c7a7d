"""The platform as real gunicorn processes on free ports, with its own `_e2e` databases."""

import pytest
import requests

from veloz.devstack import SERVICES, Platform, free_port

FAST_WORKERS = {
    "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4", "LOG_LEVEL": "INFO",
    "PAYMENT_DECLINE_RATE": "0", "SWEEP_INTERVAL_SECONDS": "0.2",
}


def start_platform(server_url, tmp_path_factory, only, **env) -> Platform:
    run_dir = tmp_path_factory.mktemp("platform")
    platform = Platform(server_url=server_url, ports={s.name: free_port() for s in SERVICES},
                        env={**FAST_WORKERS, **env}, database_suffix="_e2e",
                        log_dir=run_dir / "logs", run_dir=run_dir, only=only)
    platform.migrate(fresh=True)
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
