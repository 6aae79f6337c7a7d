"""Tables of pagamentos_db. The database itself allows one approved payment per order."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, Numeric, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pagamentos.domain import PaymentMethod, PaymentStatus
from veloz.data.db import service_metadata, table_of, utcnow
from veloz.data.idempotency import idempotency_table

ONE_APPROVED_PER_ORDER = "uq_payments_order_id_approved"


def sql_values(enum) -> str:
    return ", ".join(f"'{member}'" for member in enum)


class Base(DeclarativeBase):
    metadata = service_metadata()


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"status IN ({sql_values(PaymentStatus)})", name="known_status"),
        CheckConstraint(f"method IN ({sql_values(PaymentMethod)})", name="known_method"),
        CheckConstraint("(status = 'declined') = (decline_reason IS NOT NULL)",
                        name="reason_iff_declined"),
        Index("ix_payments_order_id", "order_id"),
        Index("ix_payments_status_id", "status", "id"),
        Index(ONE_APPROVED_PER_ORDER, "order_id", unique=True,
              postgresql_where=text("status = 'approved'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    decline_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)


class ClosedOrder(Base):
    """An order pedidos compensated: its payments were refunded and no charge of it is taken
    again (store.py takes the order's lock to close it and to charge it)."""

    __tablename__ = "closed_orders"

    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


idempotency_keys = idempotency_table(Base.metadata)
metadata = Base.metadata
# The table behind Payment, for the Core statements of the store (store.py).
payments = table_of(Payment)
closed_orders = table_of(ClosedOrder)
