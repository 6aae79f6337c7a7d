from decimal import Decimal

import pytest

from veloz.core.money import MAX_AMOUNT, AmountOutOfRange, line_subtotal, total_within_limit


def test_totals_are_exact_to_the_cent():
    assert total_within_limit([(Decimal("0.10"), 3), (Decimal("59.90"), 2)]) == Decimal("120.10")
    assert line_subtotal(Decimal("0.10"), 3) == Decimal("0.30")
    assert total_within_limit([]) == Decimal("0.00")


def test_a_total_of_exactly_the_limit_is_allowed():
    assert total_within_limit([(MAX_AMOUNT, 1)]) == MAX_AMOUNT


def test_a_line_above_the_limit_is_refused_naming_the_line():
    with pytest.raises(AmountOutOfRange) as refused:
        total_within_limit([(Decimal(1), 1), (Decimal("9999999999.99"), 2)])
    assert refused.value.status == 422
    assert [error["field"] for error in refused.value.errors] == ["items[1].quantity"]


def test_lines_each_within_the_limit_but_a_total_above_it_are_refused_as_a_whole():
    with pytest.raises(AmountOutOfRange) as refused:
        total_within_limit([(Decimal("6000000000"), 1), (Decimal("6000000000"), 1)])
    assert [error["field"] for error in refused.value.errors] == ["items"]
