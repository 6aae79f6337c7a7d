"""Property-based: nothing a client sends, valid or not, makes pedidos answer 5xx."""

from veloz.testing import assert_no_server_errors


def test_no_request_of_any_shape_gets_a_server_error(app, stock):
    stock.post("/items", json={"name": "Camiseta", "quantity": 1000, "price": 59.9})

    assert_no_server_errors(app, max_examples=15)
