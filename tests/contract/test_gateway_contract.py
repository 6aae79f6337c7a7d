"""Property-based, through the gateway: whatever a client sends, the platform answers as the
merged OpenAPI document promises (status, content type, schema; never a 5xx)."""

import pytest

from veloz.dev.testing import assert_answers_as_documented


@pytest.fixture(scope="module")
def stocked(services):
    services["estoque"].test_client().post(
        "/items", json={"name": "Camiseta", "quantity": 1000, "price": 59.9})


def test_an_admin_gets_only_answers_the_merged_document_promises(gateway, bearer, stocked):
    assert_answers_as_documented(gateway, headers=bearer("admin"))


def test_a_customer_gets_only_answers_the_merged_document_promises(gateway, bearer, stocked):
    assert_answers_as_documented(gateway, headers=bearer("customer"), max_examples=4)


def test_an_anonymous_caller_gets_only_answers_the_merged_document_promises(gateway, stocked):
    assert_answers_as_documented(gateway, max_examples=3)
