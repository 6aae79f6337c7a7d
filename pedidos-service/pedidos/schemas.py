"""Request and response bodies. The same models validate requests and document OpenAPI."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    computed_field,
    field_validator,
)

from pedidos.domain import OrderStatus
from veloz.core.fields import Id
from veloz.core.money import Money, line_subtotal
from veloz.core.schemas import RequestBody, each_item_once
from veloz.data.paging import PageQuery

PaymentMethod = Literal["credit_card", "debit_card", "pix", "boleto"]
CARD_METHODS = frozenset({"credit_card", "debit_card"})


class OrderLineIn(RequestBody):
    item_id: Id
    quantity: int = Field(ge=1, le=1000)


class PaymentIn(RequestBody):
    method: PaymentMethod
    card_number: str | None = Field(default=None, pattern=r"^[0-9]{12,19}$",
                                    description="12 to 19 digits; never stored here")

    @field_validator("card_number")
    @classmethod
    def only_cards_have_numbers(cls, card_number: str | None, info: ValidationInfo):
        method = info.data.get("method")
        if card_number is not None and method is not None and method not in CARD_METHODS:
            raise ValueError(f"a card number is only accepted with a card method, not {method}")
        return card_number


class OrderCreate(RequestBody):
    customer: str = Field(min_length=1, max_length=200)
    items: Annotated[list[OrderLineIn], AfterValidator(each_item_once)] = Field(
        min_length=1, max_length=100)
    payment: PaymentIn | None = None

    @field_validator("customer")
    @classmethod
    def customer_not_blank(cls, customer: str) -> str:
        if not customer.strip():
            raise ValueError("customer must not be blank")
        return customer


    def redacted(self) -> "OrderCreate":
        """The order without its card number (only the last 4 digits), for fingerprints."""
        if self.payment is None or self.payment.card_number is None:
            return self
        card = PaymentIn.model_construct(method=self.payment.method,
                                         card_number=self.payment.card_number[-4:])
        return self.model_copy(update={"payment": card})


class OrderQuery(PageQuery):
    status: OrderStatus | None = None
    customer: str | None = Field(default=None, min_length=1, max_length=255,
                                 description="Customer name or customer_id, exactly")
    sort: Literal["id", "-id"] = Field(default="id",
                                       description="`id` oldest first, `-id` newest first")


class OrderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    item_id: int
    item_name: str | None
    quantity: int
    unit_price: Money | None

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form
    @property
    def subtotal(self) -> Money | None:
        return None if self.unit_price is None else line_subtotal(self.unit_price, self.quantity)


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer: str
    customer_id: str | None
    status: OrderStatus
    total: Money | None
    currency: str
    items: list[OrderLineOut]
    reservation_id: int | None
    payment_id: int | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime


class PlacedOrder(BaseModel):
    """201 body of POST /orders; `payment` is pagamentos' payment as it answered (null when
    the order cost nothing, so nothing was charged)."""

    order: OrderOut
    payment: dict[str, Any] | None


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    status: OrderStatus
    reason: str | None
    at: datetime
