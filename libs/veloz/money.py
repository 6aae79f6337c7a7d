"""Money: NUMERIC(12,2) in PostgreSQL, Decimal in code, a JSON number on the wire."""

from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer

from veloz.jsonio import wire_decimal

MAX_AMOUNT = Decimal("9999999999.99")


def _json_number_only(value):
    # Strings and booleans are a client bug, not an amount; numbers parse exactly to Decimal.
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON number")
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_json_number_only),
    Field(strict=False, ge=0, le=MAX_AMOUNT, max_digits=12, decimal_places=2),
    PlainSerializer(wire_decimal, return_type=Decimal),
]
PositiveMoney = Annotated[Money, Field(gt=0)]
