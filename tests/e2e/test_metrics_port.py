"""The gateway's metrics live on an internal port of their own (METRICS_BIND), never on the
public one, however the path is spelled. A real gateway process under gunicorn; raw HTTP
(http.client) so every spelling reaches it byte for byte, as a client would send it."""

import http.client
import json

import pytest

from tests.e2e.conftest import JWT_TEST_SECRET, start_platform

pytestmark = pytest.mark.e2e

# Every way a client might hope to reach /metrics on the public port.
SPELLINGS = ("/metrics", "/metrics/", "//metrics", "/%6detrics", "/%6D%65trics", "/Metrics",
             "/METRICS/", "/./metrics", "/items/../metrics", "/metrics?x=1", "/metrics/?",
             "//metrics?format=text", "/%6detrics?name[]=up")


@pytest.fixture(scope="module")
def gateway(postgres_server_url, tmp_path_factory):
    """A gateway alone: nothing behind it is needed to answer /metrics or refuse it."""
    platform = start_platform(postgres_server_url, tmp_path_factory, only={"api-gateway"},
                              database_suffix="_metrics_port", JWT_SECRET=JWT_TEST_SECRET)
    yield platform
    platform.stop()


def call(port: int, path: str, method: str = "GET",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": f"127.0.0.1:{port}", **(headers or {})}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def public_port(platform) -> int:
    return platform.ports["api-gateway"]


def metrics_port(platform) -> int:
    return platform.metrics_ports["api-gateway"]


@pytest.mark.parametrize("path", SPELLINGS)
def test_the_public_port_answers_every_spelling_of_metrics_with_a_404_problem(gateway, path):
    status, headers, body = call(public_port(gateway), path)

    assert status == 404, (path, status, body[:200])
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 404
    assert problem["request_id"]
    assert b"flask_http_request" not in body


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "POST"])
def test_the_public_port_refuses_metrics_to_every_method(gateway, method):
    status, headers, _body = call(public_port(gateway), "/metrics", method)

    assert status == 404, (method, status)
    assert headers["Content-Type"] == "application/problem+json"


def test_a_host_header_naming_the_internal_port_does_not_open_metrics_on_the_public_one(
        gateway):
    internal = f"127.0.0.1:{metrics_port(gateway)}"
    status, _headers, body = call(public_port(gateway), "/metrics",
                                  headers={"Host": internal, "X-Forwarded-Host": internal,
                                           "X-Forwarded-Port": str(metrics_port(gateway))})

    assert status == 404, body[:200]


def test_the_internal_port_serves_the_metrics_of_the_public_ports_traffic(gateway):
    assert call(public_port(gateway), "/livez")[0] == 200

    status, headers, body = call(metrics_port(gateway), "/metrics")

    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    served = [line for line in body.decode().splitlines()
              if line.startswith("flask_http_request_duration_seconds_count")
              and 'service="api-gateway"' in line]
    assert served, body[:500]


@pytest.mark.parametrize("path", ["/livez", "/health", "/openapi.json", "/items", "/"])
def test_the_internal_port_serves_nothing_but_metrics(gateway, path):
    status, headers, _body = call(metrics_port(gateway), path)

    assert status == 404, (path, status)
    assert headers["Content-Type"] == "application/problem+json"
