"""Money: NUMERIC(12,2) in PostgreSQL, Decimal in code, a JSON number on the wire."""

from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer

from veloz.core.codec import wire_decimal
from veloz.core.errors import Unprocessable

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

CENT = Decimal("0.01")


class AmountOutOfRange(Unprocessable):
    """A computed amount (a line subtotal, an order total) beyond what NUMERIC(12,2) holds."""

    title, slug = "Amount out of range", "amount-out-of-range"


def line_subtotal(unit_price: Decimal, quantity: int) -> Decimal:
    return (unit_price * quantity).quantize(CENT)


def total_within_limit(lines: Sequence[tuple[Decimal, int]], field: str = "items") -> Decimal:
    """Sum of unit price x quantity, exact to the cent; AmountOutOfRange naming the line
    (`items[i].quantity`) or the whole (`items`) when a subtotal or the total is too large."""
    errors = [{"field": f"{field}[{index}].quantity",
               "message": f"this line costs {subtotal}, above the limit of {MAX_AMOUNT}"}
              for index, subtotal in enumerate(line_subtotal(p, q) for p, q in lines)
              if subtotal > MAX_AMOUNT]
    total = sum((line_subtotal(price, quantity) for price, quantity in lines), Decimal("0.00"))
    if not errors and total > MAX_AMOUNT:
        errors = [{"field": field,
                   "message": f"the total {total} is above the limit of {MAX_AMOUNT}"}]
    if errors:
        raise AmountOutOfRange("An amount would exceed the money limit of "
                               f"{MAX_AMOUNT} BRL; order fewer units.", errors=errors)
    return total
