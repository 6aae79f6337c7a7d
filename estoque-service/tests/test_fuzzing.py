"""Property-based: whatever a client sends, valid or not, the service answers as its OpenAPI
document promises (documented status, content type and schema; never a 5xx)."""

from veloz.dev.testing import assert_answers_as_documented


def test_every_answer_is_one_the_openapi_document_promises(app):
    assert_answers_as_documented(app)
