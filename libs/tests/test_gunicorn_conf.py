"""The gunicorn settings every service runs with: the collector's tuning, checked early."""

import gc

import pytest

from veloz import gunicorn_conf


@pytest.fixture
def collector_restored():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_a_booted_worker_freezes_what_it_built_and_collects_less_often(collector_restored):
    gunicorn_conf.post_worker_init(worker=None)

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == gunicorn_conf.GC_THRESHOLDS != (700, 10, 10)  # CPython's


@pytest.mark.parametrize("value", ["5000,20", "5000,20,x", "0,20,50", ""])
def test_gc_thresholds_that_are_not_three_positive_integers_stop_the_server(value):
    with pytest.raises(SystemExit, match="GC_THRESHOLDS"):
        gunicorn_conf.gc_thresholds(value)


def test_gc_thresholds_are_read_as_given():
    assert gunicorn_conf.gc_thresholds("700,10,10") == (700, 10, 10)
