"""`GET /items?q=`: names that contain the term, in any case, paged by keyset like any list."""

import pytest
from sqlalchemy import create_engine, text

from estoque.models import metadata
from veloz.data.db import sqlalchemy_url
from veloz.dev.testing import schema_differences

NAMES = ["Camiseta Azul", "CAMISETA verde", "minhas camisetas", "Boné azul", "Desconto 50%",
         "Desconto 500 reais", "tag_a", "tagXa", "C:\\pasta", "Meia"]


@pytest.fixture
def catalog(make_item):
    return {name: make_item(name=name)["id"] for name in NAMES}


def names_found(client, term: str) -> list[str]:
    response = client.get("/items", query_string={"q": term})
    assert response.status_code == 200
    return sorted(item["name"] for item in response.json)


@pytest.mark.parametrize(("term", "expected"), [
    ("camiseta", ["CAMISETA verde", "Camiseta Azul", "minhas camisetas"]),
    ("AZUL", ["Boné azul", "Camiseta Azul"]),
    ("0%", ["Desconto 50%"]),
    ("%", ["Desconto 50%"]),
    ("g_a", ["tag_a"]),
    ("_", ["tag_a"]),
    ("\\", ["C:\\pasta"]),
    (":\\p", ["C:\\pasta"]),
    ("xilofone", []),
    # Terms of one or two characters, which the trigram index cannot narrow:
    ("Z", ["Boné azul", "Camiseta Azul"]),
    ("É", ["Boné azul"]),
    ("50", ["Desconto 50%", "Desconto 500 reais"]),
    ("0 ", ["Desconto 500 reais"]),
    ("x", ["tagXa"]),
    ("q", []),
])
def test_search_finds_the_names_that_contain_the_term_in_any_case(client, catalog, term,
                                                                   expected):
    assert names_found(client, term) == expected


def follow_pages(client, url: str) -> list[dict]:
    seen = []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += response.json
        link = response.headers.get("Link")
        url = link[link.index("/items"):link.index(">")] if link else None
    return seen


@pytest.mark.parametrize("term", ["luneta", "Lu"])
@pytest.mark.parametrize(("sort", "key"), [
    ("id", lambda item: item["id"]),
    ("price", lambda item: (item["price"], item["id"])),
    ("-price", lambda item: (-item["price"], item["id"])),
    ("name", lambda item: (item["name"], item["id"])),
])
def test_paging_through_a_search_returns_every_match_once_in_the_sort_order(
        client, make_item, sort, key, term):
    # Ties in price; names whose order no collation disputes (each starts with its own
    # lowercase letter).
    matches = [make_item(name=name, price=price)["id"] for name, price in [
        ("c LUNETA", 5), ("a luneta", 3), ("g Luneta", 5), ("b da luneta", 9), ("e lunetas", 3),
        ("d aLuNeTa", 5), ("f LUNETA", 1)]]
    for n in range(5):
        make_item(name=f"Azul claro {n}", price=n + 1)  # an l and a u, never "lu"

    seen = follow_pages(client, f"/items?q={term}&sort={sort}&limit=2")

    assert sorted(item["id"] for item in seen) == matches
    assert seen == sorted(seen, key=key)


def indexes_of_items(database_url: str) -> dict[str, str]:
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes JOIN pg_index "
            "ON indexrelid = format('%I.%I', schemaname, indexname)::regclass "
            "WHERE tablename = 'items' AND indisvalid")).all()
    engine.dispose()
    return dict(rows)


def test_the_migrations_index_item_names_by_trigram_and_by_one_and_two_characters(
        database_url):
    indexes = indexes_of_items(database_url)

    assert "USING gin (name gin_trgm_ops)" in indexes["ix_items_name_trgm"]
    assert "USING gin (item_name_grams((name)::text))" in indexes["ix_items_name_grams"]


def test_migrations_match_the_models(database_url):
    assert schema_differences(database_url, metadata) == []
