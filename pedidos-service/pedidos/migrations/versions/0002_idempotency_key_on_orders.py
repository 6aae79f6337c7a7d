"""idempotency key on orders

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:01:47.790947
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('idempotency_scope', sa.String(length=64), nullable=True))
    op.add_column('orders', sa.Column('idempotency_key', sa.String(length=255), nullable=True))
    op.create_index('uq_orders_idempotency', 'orders', ['idempotency_scope', 'idempotency_key'], unique=True, postgresql_where=sa.text('idempotency_key IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('uq_orders_idempotency', table_name='orders', postgresql_where=sa.text('idempotency_key IS NOT NULL'))
    op.drop_column('orders', 'idempotency_key')
    op.drop_column('orders', 'idempotency_scope')
