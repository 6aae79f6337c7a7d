"""payments and idempotency keys

Revision ID: 0001
Revises:
Create Date: 2025-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("card_last4", sa.String(4), nullable=True),
        sa.Column("decline_reason", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.CheckConstraint("status IN ('approved', 'declined', 'refunded')",
                           name=op.f("ck_payments_known_status")),
        sa.CheckConstraint("method IN ('credit_card', 'debit_card', 'pix', 'boleto')",
                           name=op.f("ck_payments_known_method")),
        sa.CheckConstraint("(status = 'declined') = (decline_reason IS NOT NULL)",
                           name=op.f("ck_payments_reason_iff_declined")),
    )
    op.create_index("ix_payments_order_id", "payments", ["order_id"])
    op.create_index("ix_payments_status_id", "payments", ["status", "id"])
    # The database, not the code, guarantees at most one approved payment per order.
    op.create_index("uq_payments_order_id_approved", "payments", ["order_id"], unique=True,
                    postgresql_where=sa.text("status = 'approved'"))
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(64), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("uq_payments_order_id_approved", table_name="payments")
    op.drop_index("ix_payments_status_id", table_name="payments")
    op.drop_index("ix_payments_order_id", table_name="payments")
    op.drop_table("payments")
