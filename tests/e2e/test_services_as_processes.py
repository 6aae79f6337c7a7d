"""estoque and pagamentos as real multi-worker granian processes (veloz.run.granian), driven over
HTTP."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.conftest import start_platform

pytestmark = pytest.mark.e2e


def _post_all(url, bodies):
    def send(body):
        return requests.post(url, json=body, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_both_services_report_healthy_with_their_database(stock_and_payments, http):
    for name in ("estoque-service", "pagamentos-service"):
        answer = http.get(f"{stock_and_payments.url(name)}/health", timeout=5)
        assert answer.status_code == 200
        assert answer.json()["service"] == name


def test_sixty_concurrent_buyers_across_workers_get_exactly_ten_units(stock_and_payments, http):
    estoque = stock_and_payments.url("estoque-service")
    item = http.post(f"{estoque}/items", json={"name": "Último lote", "quantity": 10,
                                               "price": 19.9}, timeout=5).json()
    bodies = [{"order_id": 1000 + n, "items": [{"item_id": item["id"], "quantity": 1}]}
              for n in range(60)]

    statuses = _post_all(f"{estoque}/reservations", bodies)

    assert statuses.count(201) == 10
    assert statuses.count(409) == 50
    after = http.get(f"{estoque}/items/{item['id']}", timeout=5).json()
    assert (after["quantity"], after["reserved"]) == (0, 10)


def test_sweeper_process_returns_an_expired_hold_to_stock(stock_and_payments, http):
    estoque = stock_and_payments.url("estoque-service")
    item = http.post(f"{estoque}/items", json={"name": "Perecível", "quantity": 4, "price": 3.5},
                     timeout=5).json()
    hold = http.post(f"{estoque}/reservations", json={
        "order_id": 5000, "ttl_seconds": 1, "items": [{"item_id": item["id"], "quantity": 3}]},
        timeout=5).json()

    deadline, status = time.monotonic() + 15, hold["status"]
    while status == "held" and time.monotonic() < deadline:
        time.sleep(0.3)
        status = http.get(f"{estoque}/reservations/{hold['id']}", timeout=5).json()["status"]

    assert status == "expired"
    assert http.get(f"{estoque}/items/{item['id']}", timeout=5).json()["quantity"] == 4


def test_twenty_racing_charges_of_one_order_approve_exactly_one(stock_and_payments, http):
    pagamentos = stock_and_payments.url("pagamentos-service")
    charge = {"order_id": 777, "amount": 119.8, "card_number": "4242424242424242"}

    statuses = _post_all(f"{pagamentos}/payments", [charge] * 20)

    assert statuses.count(201) == 1
    assert statuses.count(409) == 19
    payments = http.get(f"{pagamentos}/payments?order_id=777", timeout=5).json()
    assert [p["status"] for p in payments] == ["approved"]


def test_metrics_add_up_requests_from_every_worker(stock_and_payments, http):
    estoque = stock_and_payments.url("estoque-service")
    for _ in range(20):
        http.get(f"{estoque}/items", timeout=5)

    metrics = http.get(f"{estoque}/metrics", timeout=5).text

    assert "flask_http_request_duration_seconds_count" in metrics
    served = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                 if line.startswith("flask_http_request_total{") and 'method="GET"' in line
                 and 'status="200"' in line)
    assert served >= 20


def test_each_request_is_logged_once_with_its_request_id(stock_and_payments, http):
    estoque = stock_and_payments.url("estoque-service")
    request_id = "log-once-probe"
    http.get(f"{estoque}/items", headers={"X-Request-ID": request_id}, timeout=5)

    log = stock_and_payments.log_dir / "estoque-service.log"
    deadline = time.monotonic() + 5
    while request_id not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [line for line in log.read_text().splitlines() if "GET /items" in line
             or request_id in line]

    assert len([line for line in lines if request_id in line]) == 1
    assert not [line for line in lines if '"granian.access"' in line]


def test_a_service_told_to_stop_answers_the_request_in_flight_first(postgres_server_url,
                                                                      tmp_path_factory):
    """A rolling update's SIGTERM: the charge being served completes, new calls are refused,
    and the server then exits by itself."""
    platform = start_platform(postgres_server_url, tmp_path_factory, {"pagamentos-service"},
                              database_suffix="_e2e_stop", PAYMENT_LATENCY_MS="1500")
    try:
        pagamentos = platform.url("pagamentos-service")
        with ThreadPoolExecutor(max_workers=1) as pool:
            charge = pool.submit(requests.post, f"{pagamentos}/payments", timeout=10, json={
                "order_id": 4242, "amount": 10, "card_number": "4242424242424242"})
            time.sleep(0.5)  # the charge is inside its 1.5 s of processor latency
            platform.processes["pagamentos-service"].terminate()
            answered = charge.result()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{pagamentos}/livez", timeout=2)
        assert platform.processes["pagamentos-service"].wait(15) == 0
    finally:
        platform.stop()

    assert answered.status_code == 201


def test_a_platform_that_fails_to_start_leaves_no_process_behind(postgres_server_url,
                                                                 tmp_path_factory):
    """estoque's server refuses its settings and exits; its sweeper, already started, is
    stopped with it instead of living on as an orphan."""
    with pytest.raises(RuntimeError, match="estoque-service exited"):
        start_platform(postgres_server_url, tmp_path_factory, {"estoque-service"},
                       database_suffix="_e2e_bad", GC_THRESHOLDS="never")
    started = [line for line in _processes() if "estoque.sweeper" in line
               and "_e2e_bad" in line]
    assert started == []


def _processes() -> list[str]:
    """Each process's command line and environment, as one line of text."""
    from pathlib import Path

    lines = []
    for entry in Path("/proc").iterdir():
        try:
            lines.append(((entry / "cmdline").read_bytes() + (entry / "environ").read_bytes())
                         .replace(b"\0", b" ").decode("utf-8", "replace"))
        except OSError:
            continue
    return lines
