"""The OpenAPI documents tell the truth a client or a generator relies on."""

import pytest
from flask import Blueprint
from pydantic import BaseModel

from veloz.core.fields import MAX_ID
from veloz.dev.testing import assert_answers_as_documented
from veloz.web.api import operation, respond
from veloz.web.app import create_service_app

SERVICES = ("estoque", "pagamentos", "pedidos")
METHODS = ("get", "post", "put", "patch", "delete")


def operations(document):
    for path, item in document["paths"].items():
        for method, operation_object in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation_object


def refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document, ref):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


@pytest.mark.parametrize("name", [*SERVICES, "gateway"])
def test_every_ref_resolves_inside_its_document(documents, name):
    document = documents[name]
    found = set(refs(document))

    assert found, "the document uses components"
    for ref in found:
        resolve(document, ref)


def test_an_enum_inside_a_query_string_is_a_component(documents):
    status = {p["name"]: p for p in documents["pedidos"]["paths"]["/orders"]["get"]["parameters"]}
    assert status["status"]["schema"] == {"$ref": "#/components/schemas/OrderStatus"}
    assert "paid" in documents["pedidos"]["components"]["schemas"]["OrderStatus"]["enum"]


def test_a_reservation_is_documented_with_the_items_it_carries(documents):
    reservation = documents["estoque"]["components"]["schemas"]["ReservationOut"]
    assert "items" in reservation["properties"]
    assert "lines" not in reservation["properties"]


def test_an_order_line_documents_its_computed_subtotal(documents):
    line = documents["pedidos"]["components"]["schemas"]["OrderLineOut"]
    assert "subtotal" in line["properties"]


def test_enforced_money_rules_are_documented_as_json_numbers(documents):
    estoque = documents["estoque"]["components"]["schemas"]
    amount = documents["pagamentos"]["components"]["schemas"]["ChargeRequest"]["properties"][
        "amount"]
    patched_price = estoque["ItemPatch"]["properties"]["price"]

    assert amount["exclusiveMinimum"] == 0
    assert patched_price["minimum"] == 0
    for money in (amount, patched_price):
        assert money["type"] == "number"
        assert money["maximum"] == 9999999999.99
        assert money["multipleOf"] == 0.01
        assert not {"ge", "gt", "le", "decimal_places", "max_digits"} & set(money)


def test_deleting_an_item_is_documented_and_answered_as_204_without_a_body(documents, services):
    documented = documents["estoque"]["paths"]["/items/{item_id}"]["delete"]["responses"]["204"]
    client = services["estoque"].test_client()
    item_id = client.post("/items", json={"name": "Boné", "price": 5}).json["id"]

    response = client.delete(f"/items/{item_id}")

    assert "content" not in documented
    assert response.status_code == 204
    assert response.data == b""
    assert "Content-Type" not in response.headers


@pytest.mark.parametrize("name", [*SERVICES, "gateway"])
def test_every_problem_answer_is_problem_json_with_the_shared_schema(documents, name):
    document = documents[name]
    problem = document["components"]["schemas"]["ProblemDetails"]
    assert problem["additionalProperties"] is True, "extension members are allowed"
    assert {"order", "payment", "errors", "available"} <= set(problem["properties"])
    for label, operation_object in operations(document):
        for status, response in operation_object["responses"].items():
            if int(status) >= 400 and label != "GET /health":
                assert response["content"] == {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/ProblemDetails"}}}, (label, status)


@pytest.mark.parametrize(("name", "path"), [("pedidos", "/orders"), ("pagamentos", "/payments"),
                                            ("estoque", "/reservations"), ("gateway", "/orders"),
                                            ("gateway", "/payments"),
                                            ("gateway", "/reservations")])
def test_idempotency_key_is_documented_where_it_is_honoured(documents, name, path):
    parameters = documents[name]["paths"][path]["post"]["parameters"]
    key = next(p for p in parameters if p["name"] == "Idempotency-Key")
    assert key["in"] == "header"
    assert key["schema"]["maxLength"] == 255


def test_services_document_503_for_a_database_outage_on_every_operation(documents):
    for name in SERVICES:
        for label, operation_object in operations(documents[name]):
            assert "503" in operation_object["responses"], (name, label)


def test_the_gateway_documents_its_own_answers_by_the_access_table(documents):
    paths = documents["gateway"]["paths"]

    public, signed_in, admin_only = (paths["/items"]["get"], paths["/orders"]["post"],
                                     paths["/items"]["post"])
    assert "401" not in public["responses"]
    assert "security" not in public
    assert {"401", "429", "503", "504"} <= set(signed_in["responses"])
    assert "403" not in signed_in["responses"], "every valid token is admin or customer"
    assert {"401", "403"} <= set(admin_only["responses"])
    assert "RateLimit-Remaining" in public["responses"]["429"]["headers"]
    assert "429" not in paths["/health"]["get"]["responses"], "health is never limited"


def test_identity_headers_are_the_gateways_to_set_not_a_clients(documents):
    def header_names(document):
        return {p["name"] for p in document["paths"]["/orders/{order_id}"]["get"]["parameters"]
                if p["in"] == "header"}

    assert {"X-User-Id", "X-User-Roles"} <= header_names(documents["pedidos"])
    assert not {"X-User-Id", "X-User-Roles"} & header_names(documents["gateway"])


def test_ids_beyond_bigint_are_not_found_by_any_method(services):
    client = services["estoque"].test_client()
    for method in ("get", "patch", "delete"):
        answer = client.open(f"/items/{MAX_ID + 1}", method=method)
        assert answer.status_code == 404, method
        assert answer.content_type == "application/problem+json"


class Thing(BaseModel):
    name: str


def test_the_conformance_run_catches_an_answer_its_document_does_not_promise():
    liar = Blueprint("liar", __name__)

    @liar.get("/thing")
    @operation("A thing", responses={200: Thing})
    def thing():
        return respond({"title": "not a thing"})

    app = create_service_app(name="liar", version="1", log_level="WARNING",
                             max_body_bytes=1024, blueprints=[liar], readiness=dict)

    with pytest.raises(AssertionError, match="GET /thing"):
        assert_answers_as_documented(app, max_examples=3)
