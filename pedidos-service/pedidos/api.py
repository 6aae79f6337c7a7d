"""HTTP routes of pedidos: validate, call one use case, serialize."""

from flask import Blueprint, current_app, request

from pedidos.domain import Caller
from pedidos.schemas import EventOut, OrderCreate, OrderOut, OrderQuery, PlacedOrder
from pedidos.services import Orders, SagaOutcome
from veloz.api import operation, respond
from veloz.idempotency import key_from_request
from veloz.paging import split_page
from veloz.problems import problem_response

bp = Blueprint("pedidos", __name__)
ORDERS = ("orders",)


def _orders() -> Orders:
    return current_app.extensions["orders"]


def _caller() -> Caller:
    """Identity as forwarded by the gateway, which strips any copy a client sends."""
    return Caller.from_headers(request.headers.get("X-User-Id"),
                               request.headers.get("X-User-Roles"))


def _order(order) -> OrderOut:
    return OrderOut.model_validate(order)


def _saga_response(outcome: SagaOutcome):
    order = _order(outcome.order)
    if outcome.problem is None:
        return respond(PlacedOrder(order=order, payment=outcome.payment), 201,
                       {"Location": f"/orders/{order.id}"})
    problem = outcome.problem
    problem.extensions["order"] = order.model_dump()
    if outcome.payment is not None:
        problem.extensions["payment"] = outcome.payment
    return problem_response(problem)


@bp.post("/orders")
@operation("Place an order: hold stock, charge, commit (the purchase saga)", body=OrderCreate,
           responses={201: PlacedOrder, 402: None, 409: None, 422: None, 503: None},
           tags=ORDERS)
def place_order(body: OrderCreate):
    caller = _caller()
    key = key_from_request(caller.idempotency_scope, body.redacted())
    return _orders().place(body, key, caller, _saga_response)


@bp.get("/orders")
@operation("List orders (keyset paged)", query=OrderQuery, responses={200: [OrderOut]},
           tags=ORDERS)
def list_orders(query: OrderQuery):
    rows, headers = split_page(_orders().page(query, _caller()), query)
    return respond([_order(row) for row in rows], 200, headers)


@bp.get("/orders/<int:order_id>")
@operation("Get an order", responses={200: OrderOut, 404: None}, tags=ORDERS)
def get_order(order_id: int):
    return respond(_order(_orders().get(order_id, _caller())))


@bp.get("/orders/<int:order_id>/events")
@operation("Status history of an order, oldest first", responses={200: [EventOut], 404: None},
           tags=ORDERS)
def order_events(order_id: int):
    events = _orders().events(order_id, _caller())
    return respond([EventOut.model_validate(event) for event in events])


@bp.post("/orders/<int:order_id>/cancel")
@operation("Cancel an order: release or return its stock, refund its payment (idempotent)",
           responses={200: OrderOut, 404: None, 409: None, 503: None}, tags=ORDERS)
def cancel_order(order_id: int):
    return respond(_order(_orders().cancel(order_id, _caller())))
