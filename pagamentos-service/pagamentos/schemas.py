"""Payloads of the payments API: they validate requests, type the code and feed OpenAPI."""

from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from pagamentos.domain import PaymentMethod, PaymentStatus, accepts_card
from veloz.core.fields import Id
from veloz.core.money import Money, PositiveMoney
from veloz.core.schemas import RequestBody
from veloz.data.paging import PageQuery

CardNumber = Annotated[str, Field(pattern=r"^[0-9]{12,19}$",
                                  description="12 to 19 digits; only the last 4 are kept")]


class ChargeRequest(RequestBody):
    order_id: Id
    amount: PositiveMoney
    method: PaymentMethod = PaymentMethod.CREDIT_CARD
    card_number: CardNumber | None = None

    @field_validator("card_number")
    @classmethod
    def only_cards_have_numbers(cls, card_number: str | None, info: ValidationInfo):
        method = info.data.get("method")
        if card_number is not None and method is not None and not accepts_card(method):
            raise ValueError(f"a card number is only accepted with a card method, not {method}")
        return card_number


class PaymentOut(BaseModel):
    """A payment as clients see it; never more of a card than its last 4 digits."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    order_id: int
    amount: Money
    method: PaymentMethod
    status: PaymentStatus
    card_last4: str | None
    decline_reason: str | None
    created_at: datetime
    updated_at: datetime


class OrderClosureOut(BaseModel):
    """An order's books at pagamentos once pedidos compensated it: every payment of the order
    (none stands approved) and when it was first closed; no charge of it is taken again."""

    order_id: int
    closed_at: datetime
    payments: list[PaymentOut]


class PaymentListQuery(PageQuery):
    order_id: Id | None = None
    status: PaymentStatus | None = None
