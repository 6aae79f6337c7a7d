import logging
import threading
from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from gateway import telemetry
from gateway.backends import is_server_error
from gateway.breaker import BreakerPolicy, CircuitBreaker, CircuitOpen, State
from gateway.config import GatewaySettings
from veloz.net.client import UpstreamTimeout, UpstreamUnavailable

# Small numbers keep the tests short: 10 calls, half of them failing, open for 1 s, then
# 2 s, 4 s and at most 5 s; two probes close it.
POLICY = BreakerPolicy(failure_ratio=0.5, minimum_calls=10, window_seconds=10,
                       window_buckets=10, open_seconds=1, max_open_seconds=5, half_open_calls=2)


@dataclass(frozen=True)
class Answer:
    """Stands in for veloz.net.client.Answer: the breaker only looks at its status."""

    status: int


OK = Answer(200)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def breaker(clock):
    return CircuitBreaker("estoque", POLICY, is_failure=is_server_error, clock=clock)


def raiser(error):
    def send():
        raise error("from the test")

    return send


def succeed(breaker, count):
    for _ in range(count):
        assert breaker.call(lambda: OK) is OK


def time_out(breaker, count):
    for _ in range(count):
        with pytest.raises(UpstreamTimeout):
            breaker.call(raiser(UpstreamTimeout))


def open_circuit(breaker):
    time_out(breaker, POLICY.minimum_calls)
    assert breaker.state is State.OPEN


def retry_after(breaker):
    """Seconds the refusal tells the client to wait; the refused call never runs."""
    with pytest.raises(CircuitOpen) as refused:
        breaker.call(lambda: pytest.fail("a refused call ran"))
    return int(refused.value.headers["Retry-After"])


def test_the_circuit_opens_once_enough_calls_were_made_and_enough_of_them_failed(breaker):
    succeed(breaker, 5)
    time_out(breaker, 4)
    assert breaker.state is State.CLOSED, "9 calls are below the minimum"
    time_out(breaker, 1)
    assert breaker.state is State.OPEN


def test_a_burst_of_fewer_failures_than_the_minimum_calls_never_opens_it(breaker):
    time_out(breaker, POLICY.minimum_calls - 1)
    assert breaker.state is State.CLOSED


def test_many_calls_failing_below_the_ratio_keep_it_closed(breaker):
    for _ in range(10):
        succeed(breaker, 6)
        time_out(breaker, 4)
    assert breaker.state is State.CLOSED


def test_a_4xx_answer_is_the_clients_fault_and_counts_as_a_success(breaker):
    assert [breaker.call(lambda: Answer(404)) for _ in range(20)] == [Answer(404)] * 20
    assert breaker.state is State.CLOSED


def test_5xx_answers_count_as_failures_and_are_still_returned_to_the_caller(breaker):
    assert [breaker.call(lambda: Answer(503)) for _ in range(10)] == [Answer(503)] * 10
    assert breaker.state is State.OPEN


@pytest.mark.parametrize("error", [UpstreamTimeout, UpstreamUnavailable])
def test_timeouts_and_unreachable_backends_count_as_failures(breaker, error):
    for _ in range(10):
        with pytest.raises(error):
            breaker.call(raiser(error))
    assert breaker.state is State.OPEN


def test_other_exceptions_propagate_and_are_not_counted_at_all(breaker):
    for _ in range(5):
        with pytest.raises(ValueError, match="from the test"):
            breaker.call(raiser(ValueError))
    time_out(breaker, 5)
    # Counted as successes they would make 10 calls at 50 %, as failures 10 at 100 %.
    assert breaker.state is State.CLOSED


def test_failures_older_than_the_window_slide_out_of_it(breaker, clock):
    time_out(breaker, 9)
    clock.now += 10
    time_out(breaker, 9)
    assert breaker.state is State.CLOSED


def test_failures_within_the_window_add_up(breaker, clock):
    time_out(breaker, 5)
    clock.now += 9
    time_out(breaker, 5)
    assert breaker.state is State.OPEN


def test_an_open_circuit_refuses_calls_and_says_when_the_next_probe_is_due(breaker, clock):
    open_circuit(breaker)
    assert retry_after(breaker) == 1
    clock.now += 0.9
    assert retry_after(breaker) == 1, "never less than a second"
    assert breaker.state is State.OPEN


def test_after_open_seconds_probes_pass_and_their_success_closes_the_circuit(breaker, clock):
    open_circuit(breaker)
    clock.now += 1
    succeed(breaker, 1)
    assert breaker.state is State.HALF_OPEN
    succeed(breaker, 1)
    assert breaker.state is State.CLOSED


def test_closing_the_circuit_forgets_the_failures_that_opened_it(breaker, clock):
    open_circuit(breaker)
    clock.now += 1
    succeed(breaker, 2)
    time_out(breaker, POLICY.minimum_calls - 1)
    assert breaker.state is State.CLOSED


def test_while_the_probes_run_further_calls_are_refused(breaker, clock):
    open_circuit(breaker)
    clock.now += 1

    def second_probe():
        assert retry_after(breaker) == 1
        return OK

    assert breaker.call(lambda: breaker.call(second_probe)) is OK
    assert breaker.state is State.CLOSED


def test_a_failed_probe_reopens_the_circuit_for_twice_as_long_up_to_the_maximum(breaker, clock):
    open_circuit(breaker)
    waits = []
    for _ in range(4):
        waits.append(retry_after(breaker))
        clock.now += waits[-1]
        time_out(breaker, 1)
    assert waits == [1, 2, 4, 5]
    assert retry_after(breaker) == 5
    clock.now += 2.5
    assert retry_after(breaker) == 3, "seconds left, rounded up"


def test_closing_the_circuit_brings_the_open_time_back_to_its_base(breaker, clock):
    open_circuit(breaker)
    clock.now += 1
    time_out(breaker, 1)
    clock.now += 2
    succeed(breaker, 2)
    open_circuit(breaker)
    assert retry_after(breaker) == 1


def test_a_probe_ending_in_an_uncounted_error_gives_its_place_to_another(breaker, clock):
    open_circuit(breaker)
    clock.now += 1
    for _ in range(3):
        with pytest.raises(ValueError, match="from the test"):
            breaker.call(raiser(ValueError))
    assert breaker.state is State.HALF_OPEN
    succeed(breaker, 2)
    assert breaker.state is State.CLOSED


def test_a_call_begun_before_the_circuit_opened_is_not_taken_for_a_probe(breaker, clock):
    def slow_call_outlasting_the_outage():
        open_circuit(breaker)
        clock.now += 1
        succeed(breaker, 1)  # the first of two probes
        return OK

    breaker.call(slow_call_outlasting_the_outage)
    assert breaker.state is State.HALF_OPEN


def test_a_slow_call_does_not_hold_up_other_calls_to_the_same_backend(breaker):
    slow_started, finish_slow, fast_done = threading.Event(), threading.Event(), threading.Event()

    def slow():
        slow_started.set()
        finish_slow.wait(5)
        return OK

    def fast():
        breaker.call(lambda: OK)
        fast_done.set()

    slow_caller = threading.Thread(target=breaker.call, args=(slow,), daemon=True)
    slow_caller.start()
    try:
        assert slow_started.wait(5)
        threading.Thread(target=fast, daemon=True).start()
        assert fast_done.wait(5), "the fast call waited for the slow one"
    finally:
        finish_slow.set()
        slow_caller.join(5)


def test_every_transition_is_recorded_in_metrics_and_opening_and_closing_logged(
        monkeypatch, clock, caplog):
    states = []
    monkeypatch.setattr(telemetry, "record_breaker_state",
                        lambda _name, state: states.append(state))
    breaker = CircuitBreaker("estoque", POLICY, is_failure=is_server_error, clock=clock)
    with caplog.at_level(logging.INFO, logger="gateway.breaker"):
        open_circuit(breaker)
        clock.now += 1
        succeed(breaker, 2)
    assert states == ["closed", "open", "half-open", "closed"]
    logged = [(r.levelname, r.message, r.upstream) for r in caplog.records
              if r.name == "gateway.breaker"]
    assert logged == [("WARNING", "circuit opened", "estoque"),
                      ("INFO", "circuit closed", "estoque")]


URLS = {"estoque_url": "http://estoque:5003", "pedidos_url": "http://pedidos:5001",
        "pagamentos_url": "http://pagamentos:5002"}


def test_the_settings_default_to_half_of_at_least_twenty_calls_in_ten_seconds():
    settings = GatewaySettings(jwt_secret="x" * 40, **URLS)
    assert settings.breaker_policy() == BreakerPolicy(
        failure_ratio=0.5, minimum_calls=20, window_seconds=10, open_seconds=1,
        max_open_seconds=30, half_open_calls=3)


@pytest.mark.parametrize("overrides", [
    {"breaker_failure_ratio": 0}, {"breaker_failure_ratio": 1.5},
    {"breaker_minimum_calls": 0}, {"breaker_window_seconds": 0},
    {"breaker_open_seconds": 5, "breaker_max_open_seconds": 4},
])
def test_the_settings_refuse_a_breaker_that_could_not_work(overrides):
    with pytest.raises(ValidationError):
        GatewaySettings(jwt_secret="x" * 40, **URLS, **overrides)
