import pytest

from gateway.breaker import CircuitBreaker, CircuitOpen, State


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Down(Exception):
    pass


def fail():
    raise Down


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def breaker(clock):
    return CircuitBreaker("estoque", failure_threshold=3, reset_seconds=10, clock=clock)


def failures(breaker, count):
    for _ in range(count):
        with pytest.raises(Down):
            breaker.call(fail)


def test_circuit_opens_after_threshold_failures_in_a_row(breaker):
    failures(breaker, 3)
    with pytest.raises(CircuitOpen) as refused:
        breaker.call(lambda: "never called")
    assert refused.value.headers["Retry-After"] == "10"


def test_a_success_forgives_earlier_failures(breaker):
    failures(breaker, 2)
    assert breaker.call(lambda: "ok") == "ok"
    failures(breaker, 2)
    assert breaker.state is State.CLOSED


def test_after_reset_one_probe_passes_and_its_success_closes_the_circuit(breaker, clock):
    failures(breaker, 3)
    clock.now += 10
    assert breaker.call(lambda: "back") == "back"
    assert breaker.state is State.CLOSED


def test_while_the_probe_runs_other_calls_are_refused(breaker, clock):
    failures(breaker, 3)
    clock.now += 10

    def probe():
        with pytest.raises(CircuitOpen):
            breaker.call(lambda: "second caller")
        return "probe"

    assert breaker.call(probe) == "probe"


def test_a_failed_probe_opens_the_circuit_again(breaker, clock):
    failures(breaker, 3)
    clock.now += 10
    failures(breaker, 1)
    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpen):
        breaker.call(lambda: "refused")
