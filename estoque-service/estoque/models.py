"""Tables of estoque_db. Stock moves only through conditional UPDATEs in store.py."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from veloz.data.db import service_metadata, table_of, utcnow
from veloz.data.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = service_metadata()


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)


class Item(Timestamps, Base):
    """`quantity` is available to sell, `reserved` is kept by open reservations, `committed` has
    left for good."""

    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("committed >= 0", name="committed_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        Index("uq_items_sku_live", "sku", unique=True, postgresql_where=text("deleted_at IS NULL")),
        Index("ix_items_price_id", "price", "id"),
        Index("ix_items_name_id", "name", "id"),
        # `?q=` (name contains, any case) reads this trigram index instead of every row.
        Index("ix_items_name_trgm", "name", postgresql_using="gin",
              postgresql_ops={"name": "gin_trgm_ops"}),
        # ... and terms trigrams cannot narrow ("lu", "x") read this one (store.py).
        Index("ix_items_name_grams", text("item_name_grams(name)"), postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sku: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    committed: Mapped[int] = mapped_column(Integer, default=0)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Reservation(Timestamps, Base):
    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("status IN ('held', 'committed', 'released', 'expired')",
                        name="known_status"),
        Index("ix_reservations_held_expiry", "expires_at",
              postgresql_where=text("status = 'held'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    status: Mapped[str] = mapped_column(String(16), default="held")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lines: Mapped[list["ReservationLine"]] = relationship(
        order_by="ReservationLine.item_id", lazy="selectin")


class ReservationLine(Base):
    __tablename__ = "reservation_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservations.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))


class KeyedRestock(Base):
    """A restock made under an Idempotency-Key (pedidos sends one per order line it gives
    back): recorded in the restock's own transaction, so a repeat of the key adds nothing,
    even one that runs again after the answer it should replay was lost."""

    __tablename__ = "restocks"

    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


idempotency_keys = idempotency_table(Base.metadata)
metadata = Base.metadata

# The tables behind the classes, for the Core statements of the hot path (store.py).
items = table_of(Item)
reservations = table_of(Reservation)
reservation_lines = table_of(ReservationLine)
keyed_restocks = table_of(KeyedRestock)
