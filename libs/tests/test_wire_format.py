"""Pure pieces of the shared library: money on the wire, field paths, paging cursors."""

from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, Integer, MetaData, Numeric, Table, select
from sqlalchemy.dialects import postgresql

from veloz.core.codec import wire_decimal
from veloz.data.paging import PageQuery, SortKey, keyset_page
from veloz.web.api import field_errors, field_path
from veloz.web.codec import DecimalJSONProvider


@pytest.mark.parametrize(("stored", "sent"), [
    ("59.90", "59.9"), ("119.80", "119.8"), ("100.00", "100"), ("0.00", "0"), ("0.05", "0.05"),
    ("9999999999.99", "9999999999.99"),
])
def test_money_goes_out_in_its_shortest_exact_form(stored, sent):
    assert str(wire_decimal(Decimal(stored))) == sent


def test_json_keeps_decimals_exact_both_ways():
    provider = DecimalJSONProvider.__new__(DecimalJSONProvider)

    text = provider.dumps({"total": Decimal("0.1") + Decimal("0.2")})

    assert text == '{"total":0.3}'
    assert provider.loads(text)["total"] == Decimal("0.3")


def test_nested_field_path_reads_like_the_request():
    assert field_path(("items", 0, "quantity")) == "items[0].quantity"
    assert field_path(("customer",)) == "customer"


def test_validation_errors_name_each_field():
    class Line(BaseModel):
        quantity: int

    class Order(BaseModel):
        items: list[Line]

    with pytest.raises(ValidationError) as caught:
        Order.model_validate({"items": [{"quantity": 1}, {"quantity": "many"}]})

    assert [e["field"] for e in field_errors(caught.value)] == ["items[1].quantity"]


def test_keyset_page_continues_after_the_cursor_in_mixed_directions():
    table = Table("items", MetaData(), Column("id", Integer), Column("price", Numeric))
    keys = [SortKey(table.c.price, descending=True), SortKey(table.c.id)]

    statement = keyset_page(select(table), keys, PageQuery(limit=10), cursor=(5, 42))
    sql = str(statement.compile(dialect=postgresql.dialect(),
                                compile_kwargs={"literal_binds": True}))

    assert "items.price <= 5 AND (items.price < 5 OR items.price = 5 AND items.id > 42)" in sql
    assert "ORDER BY items.price DESC, items.id ASC" in sql
    assert "LIMIT 11" in sql


def test_keyset_page_in_one_direction_continues_with_a_row_comparison_an_index_can_start_at():
    table = Table("items", MetaData(), Column("id", Integer), Column("price", Numeric))
    keys = [SortKey(table.c.price), SortKey(table.c.id)]

    statement = keyset_page(select(table), keys, PageQuery(limit=10), cursor=(5, 42))
    sql = str(statement.compile(dialect=postgresql.dialect(),
                                compile_kwargs={"literal_binds": True}))

    assert "(items.price, items.id) > (5, 42)" in sql
    assert "ORDER BY items.price ASC, items.id ASC" in sql
