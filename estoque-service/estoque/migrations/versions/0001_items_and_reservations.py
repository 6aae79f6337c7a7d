"""items and reservations

Revision ID: 0001
Revises:
Create Date: 2026-11-23 18:36:57.107718
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
    op.create_table('items',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.Column('committed', sa.Integer(), nullable=False),
    sa.Column('price', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('committed >= 0', name=op.f('ck_items_committed_not_negative')),
    sa.CheckConstraint('price >= 0', name=op.f('ck_items_price_not_negative')),
    sa.CheckConstraint('quantity >= 0', name=op.f('ck_items_quantity_not_negative')),
    sa.CheckConstraint('reserved >= 0', name=op.f('ck_items_reserved_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_items'))
    )
    op.create_index('ix_items_name_id', 'items', ['name', 'id'], unique=False)
    op.create_index('ix_items_price_id', 'items', ['price', 'id'], unique=False)
    op.create_index('uq_items_sku_live', 'items', ['sku'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('reservations',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('held', 'committed', 'released', 'expired')", name=op.f('ck_reservations_known_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservations')),
    sa.UniqueConstraint('order_id', name=op.f('uq_reservations_order_id'))
    )
    op.create_index('ix_reservations_held_expiry', 'reservations', ['expires_at'], unique=False, postgresql_where=sa.text("status = 'held'"))
    op.create_table('reservation_items',
    sa.Column('reservation_id', sa.BigInteger(), nullable=False),
    sa.Column('item_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_reservation_items_quantity_positive')),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_reservation_items_item_id_items')),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservations.id'], name=op.f('fk_reservation_items_reservation_id_reservations')),
    sa.PrimaryKeyConstraint('reservation_id', 'item_id', name=op.f('pk_reservation_items'))
    )
    op.create_index(op.f('ix_reservation_items_item_id'), 'reservation_items', ['item_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_reservation_items_item_id'), table_name='reservation_items')
    op.drop_table('reservation_items')
    op.drop_index('ix_reservations_held_expiry', table_name='reservations', postgresql_where=sa.text("status = 'held'"))
    op.drop_table('reservations')
    op.drop_index('uq_items_sku_live', table_name='items', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_items_price_id', table_name='items')
    op.drop_index('ix_items_name_id', table_name='items')
    op.drop_table('items')
    op.drop_table('idempotency_keys')
