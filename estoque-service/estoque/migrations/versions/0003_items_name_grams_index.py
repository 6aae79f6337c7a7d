"""items: an index of each name's one- and two-character pieces, for the `?q=` terms trigrams
cannot narrow

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:00:00.000000

A term without three letters or digits in a row ("lu", "x", "5%") gives pg_trgm no trigram to
look up, so the search read every row (250-500 ms for a rare or absent one at 1,000,000
items). item_name_grams(name) is every character of the lowercased name and every pair of
neighbours; item_term_grams(term) is what a name that contains the term, in any case, must
hold: the term's pairs (which imply its characters), or its one character. The GIN index on
the first finds the candidates, ILIKE keeps the matches. Built CONCURRENTLY, as 0002's.
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

INDEX = 'ix_items_name_grams'
FUNCTIONS = """
CREATE OR REPLACE FUNCTION item_name_grams(name text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    folded text := lower(name);
    grams text[] := string_to_array(folded, NULL);
BEGIN
    FOR i IN 1 .. length(folded) - 1 LOOP
        grams := grams || substr(folded, i, 2);
    END LOOP;
    RETURN grams;
END
$$;
CREATE OR REPLACE FUNCTION item_term_grams(term text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    folded text := lower(term);
    pairs text[] := '{}';
BEGIN
    IF length(folded) < 2 THEN
        RETURN string_to_array(folded, NULL);
    END IF;
    FOR i IN 1 .. length(folded) - 1 LOOP
        pairs := pairs || substr(folded, i, 2);
    END LOOP;
    RETURN pairs;
END
$$
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)
    with op.get_context().autocommit_block():
        if _invalid_index_left_behind():
            op.drop_index(INDEX, table_name='items', postgresql_concurrently=True)
        op.create_index(INDEX, 'items', [sa.text('item_name_grams(name)')], unique=False,
                        postgresql_using='gin', postgresql_concurrently=True,
                        if_not_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name='items', postgresql_concurrently=True, if_exists=True)
    op.execute('DROP FUNCTION IF EXISTS item_name_grams(text), item_term_grams(text)')


def _invalid_index_left_behind() -> bool:
    return op.get_bind().execute(sa.text(
        "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(:name) AND NOT indisvalid"),
        {'name': INDEX}).first() is not None
