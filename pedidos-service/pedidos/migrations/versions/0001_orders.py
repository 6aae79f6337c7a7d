"""orders, lines, events and idempotency keys

Revision ID: 0001
Revises:
Create Date: 2026-11-23 18:40:05.973100
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('content_type', sa.String(length=64), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_table('orders',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('customer', sa.String(length=200), nullable=False),
    sa.Column('customer_id', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('total', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reservation_id', sa.BigInteger(), nullable=True),
    sa.Column('payment_id', sa.BigInteger(), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('compensation_pending', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'stock_reserved', 'paid', 'rejected', 'payment_declined', 'failed', 'cancelled')", name=op.f('ck_orders_known_status')),
    sa.CheckConstraint('total IS NULL OR total >= 0', name=op.f('ck_orders_total_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders'))
    )
    op.create_index('ix_orders_by_customer', 'orders', ['customer', 'id'], unique=False)
    op.create_index('ix_orders_by_customer_id', 'orders', ['customer_id', 'id'], unique=False)
    op.create_index('ix_orders_compensation_pending_updated_at', 'orders', ['updated_at'], unique=False, postgresql_where=sa.text('compensation_pending'))
    op.create_index('ix_orders_in_flight_updated_at', 'orders', ['updated_at'], unique=False, postgresql_where=sa.text("status IN ('pending', 'stock_reserved')"))
    op.create_index('ix_orders_status_id', 'orders', ['status', 'id'], unique=False)
    op.create_table('order_events',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_events_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_events'))
    )
    op.create_index('ix_order_events_order_id_id', 'order_events', ['order_id', 'id'], unique=False)
    op.create_table('order_items',
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('item_id', sa.BigInteger(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('item_name', sa.String(length=200), nullable=True),
    sa.Column('unit_price', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('restocked', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_order_items_quantity_positive')),
    sa.CheckConstraint('unit_price IS NULL OR unit_price >= 0', name=op.f('ck_order_items_price_not_negative')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_items_order_id_orders')),
    sa.PrimaryKeyConstraint('order_id', 'item_id', name=op.f('pk_order_items'))
    )


def downgrade() -> None:
    op.drop_table('order_items')
    op.drop_index('ix_order_events_order_id_id', table_name='order_events')
    op.drop_table('order_events')
    op.drop_index('ix_orders_status_id', table_name='orders')
    op.drop_index('ix_orders_in_flight_updated_at', table_name='orders', postgresql_where=sa.text("status IN ('pending', 'stock_reserved')"))
    op.drop_index('ix_orders_compensation_pending_updated_at', table_name='orders', postgresql_where=sa.text('compensation_pending'))
    op.drop_index('ix_orders_by_customer_id', table_name='orders')
    op.drop_index('ix_orders_by_customer', table_name='orders')
    op.drop_table('orders')
    op.drop_table('idempotency_keys')
