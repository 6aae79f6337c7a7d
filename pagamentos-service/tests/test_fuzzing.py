"""Property-based: nothing a client sends, valid or not, makes the service answer 5xx."""

from veloz.testing import assert_no_server_errors


def test_no_request_of_any_shape_gets_a_server_error(app):
    assert_no_server_errors(app)
