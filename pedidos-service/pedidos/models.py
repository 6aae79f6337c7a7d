"""Tables of pedidos_db: orders, their lines, their status history and idempotency keys."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
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

from pedidos.domain import OrderStatus
from veloz.data.db import service_metadata, table_of, utcnow
from veloz.data.idempotency import idempotency_table

KNOWN_STATUSES = ", ".join(f"'{status}'" for status in OrderStatus)
# An order mid-saga (OrderStatus.in_flight), in SQL: status IN ('pending', 'stock_reserved').
IN_FLIGHT = "status IN ({})".format(", ".join(
    f"'{status}'" for status in OrderStatus if status.in_flight))


class Base(DeclarativeBase):
    metadata = service_metadata()


class Order(Base):
    """`compensation_pending` marks a failed order whose refund or stock return is unconfirmed;
    the recovery worker finishes it."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN ({KNOWN_STATUSES})", name="known_status"),
        CheckConstraint("total IS NULL OR total >= 0", name="total_not_negative"),
        Index("ix_orders_status_id", "status", "id"),
        Index("ix_orders_by_customer", "customer", "id"),
        Index("ix_orders_by_customer_id", "customer_id", "id"),
        Index("ix_orders_in_flight_updated_at", "updated_at", postgresql_where=text(IN_FLIGHT)),
        Index("ix_orders_compensation_pending_updated_at", "updated_at",
              postgresql_where=text("compensation_pending")),
        Index("uq_orders_idempotency", "idempotency_scope", "idempotency_key", unique=True,
              postgresql_where=text("idempotency_key IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    customer: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(24), default=OrderStatus.PENDING)
    total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="BRL")
    reservation_id: Mapped[int | None] = mapped_column(BigInteger)
    payment_id: Mapped[int | None] = mapped_column(BigInteger)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # The Idempotency-Key that placed the order, so a repeat can find it after a crash.
    idempotency_scope: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    compensation_pending: Mapped[bool] = mapped_column(Boolean, default=False,
                                                       server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)
    items: Mapped[list["OrderItem"]] = relationship(order_by="OrderItem.item_id",
                                                    lazy="selectin")


class OrderItem(Base):
    """A line as requested; name and unit price arrive from estoque's reservation.
    `restocked` records that a cancelled sale's units went back to estoque; the restock's
    Idempotency-Key (domain.restock_key) makes them go back at most once."""

    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price IS NULL OR unit_price >= 0", name="price_not_negative"),
    )

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    item_name: Mapped[str | None] = mapped_column(String(200))
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    restocked: Mapped[bool] = mapped_column(Boolean, default=False,
                                            server_default=text("false"))


class OrderEvent(Base):
    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order_id_id", "order_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


idempotency_keys = idempotency_table(Base.metadata)
metadata = Base.metadata
# The tables behind the classes, for the Core statements of the order store (store.py).
orders, order_items, order_events = (table_of(model) for model in (Order, OrderItem, OrderEvent))
