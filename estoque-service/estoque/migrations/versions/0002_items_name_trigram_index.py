"""items: a trigram index on name, so `GET /items?q=` reads matches, not every row

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00.000000

The index is built CONCURRENTLY, outside the migration's transaction: a plain CREATE INDEX
would hold off every write to items (each hold, commit and release of stock) for as long as
the build takes on a large table (7 s for 1,000,000 items here). A concurrent build that fails
leaves an INVALID index behind, which IF NOT EXISTS would keep; the upgrade drops it first.
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

INDEX = 'ix_items_name_trgm'


def upgrade() -> None:
    # pg_trgm is a trusted extension: the owner of the database may create it (docs/DEPLOY.md).
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    with op.get_context().autocommit_block():
        if _invalid_index_left_behind():
            op.drop_index(INDEX, table_name='items', postgresql_concurrently=True)
        op.create_index(INDEX, 'items', ['name'], unique=False, postgresql_using='gin',
                        postgresql_ops={'name': 'gin_trgm_ops'}, postgresql_concurrently=True,
                        if_not_exists=True)


def downgrade() -> None:
    # The extension stays: dropping it could take other objects with it.
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name='items', postgresql_concurrently=True, if_exists=True)


def _invalid_index_left_behind() -> bool:
    return op.get_bind().execute(sa.text(
        "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(:name) AND NOT indisvalid"),
        {'name': INDEX}).first() is not None
