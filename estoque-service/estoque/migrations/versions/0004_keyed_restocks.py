"""restocks: a restock under an Idempotency-Key adds its units once

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "restocks",
        sa.Column("item_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("item_id", "key", name=op.f("pk_restocks")),
    )


def downgrade() -> None:
    op.drop_table("restocks")
