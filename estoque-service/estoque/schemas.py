"""Request and response bodies. The same models validate requests and document OpenAPI."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from veloz.core.fields import Id
from veloz.core.money import Money, PositiveMoney
from veloz.core.schemas import RequestBody, each_item_once
from veloz.data.paging import PageQuery

Quantity = Annotated[int, Field(ge=1, le=1_000_000)]


class ItemCreate(RequestBody):
    """`price` is required and above 0: an item priced 0 would make an order nothing can pay
    for, and an order is `paid` only by an approved payment of exactly its total."""

    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(default=0, ge=0, le=1_000_000_000)
    price: PositiveMoney
    description: str | None = Field(default=None, max_length=5000)
    sku: str | None = Field(default=None, min_length=1, max_length=64)


class ItemPatch(RequestBody):
    """Only the fields sent change; name and price may be omitted but not null."""

    # Absent means unchanged; the types refuse an explicit null (mypy cannot see that split).
    name: str = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]
    description: str | None = Field(default=None, max_length=5000)
    price: PositiveMoney = None  # type: ignore[assignment]
    sku: str | None = Field(default=None, min_length=1, max_length=64)


class Restock(RequestBody):
    quantity: Quantity


class SingleItemReservation(RequestBody):
    quantity: Quantity


class WriteOff(RequestBody):
    reservation_id: Id


class ReservationLineIn(RequestBody):
    item_id: Id
    quantity: Quantity


class ReservationCreate(RequestBody):
    order_id: Id
    items: Annotated[list[ReservationLineIn], AfterValidator(each_item_once)] = Field(
        min_length=1, max_length=100)
    ttl_seconds: int | None = Field(default=None, ge=1, le=86400)



class ItemQuery(PageQuery):
    q: str | None = Field(default=None, max_length=200, description="Name contains (any case)")
    in_stock: bool | None = Field(default=None, description="Only items with quantity > 0")
    sort: Literal["id", "price", "-price", "name"] = "id"


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str | None
    name: str
    description: str | None
    quantity: int
    reserved: int
    price: Money
    created_at: datetime
    updated_at: datetime


class ReservationLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    item_id: int
    name: str
    quantity: int
    unit_price: Money


class ReservationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    order_id: int | None
    status: str
    expires_at: datetime
    items: list[ReservationLineOut] = Field(validation_alias="lines")
    created_at: datetime
    updated_at: datetime


class SingleItemReservationOut(BaseModel):
    message: str
    item: ItemOut
    reservation_id: int
