"""HTTP routes of pedidos: validate, call one use case (a read: the store), serialize."""

from flask import Blueprint, Response, current_app

from pedidos.bootstrap import Pedidos
from pedidos.domain import Caller
from pedidos.saga import PlaceOrder, PurchaseSaga, SagaOutcome
from pedidos.schemas import EventOut, OrderCreate, OrderOut, OrderQuery, PlacedOrder
from pedidos.store import NewOrder
from veloz.core.identity import MAX_SUBJECT_LENGTH, ROLES_HEADER, USER_ID_HEADER
from veloz.web.api import IDEMPOTENCY_KEY, HeaderParameter, operation, respond
from veloz.web.context import forwarded_caller
from veloz.web.idempotency import answers, key_from_request
from veloz.web.paging import split_page
from veloz.web.problems import problem_response

bp = Blueprint("pedidos", __name__)
TAGS = ("orders",)
_ROLE = r"[ \t]*(admin|customer)?[ \t]*"
# Set by the gateway from the bearer token; a call without them comes from another service.
CALLER = (
    HeaderParameter(USER_ID_HEADER, "The user the gateway vouches for (the token's `sub`).",
                    {"type": "string", "minLength": 1, "maxLength": MAX_SUBJECT_LENGTH,
                     "pattern": r"^[!-~]([ -~]*[!-~])?$"}),
    HeaderParameter(ROLES_HEADER, "That user's roles, comma-separated (admin, customer).",
                    {"type": "string", "pattern": rf"^{_ROLE}(,{_ROLE})*$"}),
)
UNKNOWN_CALLER = "The identity headers name no valid user or role."
NOT_VISIBLE = "No such order, or not one of this customer's."
UPSTREAM_SLOW = "estoque or pagamentos did not answer in time."


def _pedidos() -> Pedidos:
    return current_app.extensions["pedidos"]


def _order(order) -> OrderOut:
    return OrderOut.model_validate(order)


def _saga_response(outcome: SagaOutcome) -> Response:
    order = _order(outcome.order)
    payment = None if outcome.payment is None else outcome.payment.answer  # as pagamentos said
    if outcome.problem is None:
        return respond(PlacedOrder(order=order, payment=payment), 201,
                       {"Location": f"/orders/{order.id}"})
    problem = outcome.problem
    problem.extensions["order"] = order.model_dump()
    if payment is not None:
        problem.extensions["payment"] = payment
    return problem_response(problem)


@bp.post("/orders")
@operation("Place an order: reserve stock, charge, commit (the purchase saga)", body=OrderCreate,
           headers=[IDEMPOTENCY_KEY, *CALLER], tags=TAGS, responses={
               201: PlacedOrder,
               401: UNKNOWN_CALLER,
               402: "Payment declined: order `payment_declined`, stock released; the body "
                    "carries `order` and `payment`.",
               409: "Stock short (order `rejected`, `errors` lists short items), a charge that "
                    "does not match the order (payment-mismatch, order `failed`), or the same "
                    "Idempotency-Key still running; the body carries `order` when one exists.",
               422: "Invalid body, unknown items, items priced 0 (unpriced-items), or a line "
                    "or total above the money limit (amount-out-of-range); nothing is reserved.",
               503: "The database, or a participant after bounded retries, is unavailable "
                    "(order `failed`, everything given back).",
               504: UPSTREAM_SLOW})
def place_order(body: OrderCreate):
    caller = forwarded_caller(Caller)
    key = key_from_request(caller.idempotency_scope, body.redacted())
    saga = _pedidos().saga
    command = PlaceOrder(NewOrder(
        body.customer, caller.user_id, tuple((line.item_id, line.quantity) for line in body.items),
        key.scope if key else None, key.key if key else None), body.payment)
    return answers().answer(key, lambda: _saga_response(saga.place(command)),
                            unanswered=lambda: _settled_answer(saga, command.order))


def _settled_answer(saga: PurchaseSaga, order: NewOrder) -> Response | None:
    """For a key claimed but not answered: the outcome of the order it placed, once settled;
    None (place it now) when the first attempt died before recording any order."""
    outcome = saga.settled_repeat(order)
    return None if outcome is None else _saga_response(outcome)


@bp.get("/orders")
@operation("List orders (keyset paged); a customer sees only its own", query=OrderQuery,
           headers=CALLER, responses={200: [OrderOut], 401: UNKNOWN_CALLER}, tags=TAGS)
def list_orders(query: OrderQuery):
    rows, headers = split_page(_pedidos().store.page(query, forwarded_caller(Caller)), query)
    return respond([_order(row) for row in rows], 200, headers)


@bp.get("/orders/<int:order_id>")
@operation("Get an order", headers=CALLER, tags=TAGS,
           responses={200: OrderOut, 401: UNKNOWN_CALLER, 404: NOT_VISIBLE})
def get_order(order_id: int):
    return respond(_order(_pedidos().store.visible(order_id, forwarded_caller(Caller))))


@bp.get("/orders/<int:order_id>/events")
@operation("Status history of an order, oldest first", headers=CALLER, tags=TAGS,
           responses={200: [EventOut], 401: UNKNOWN_CALLER, 404: NOT_VISIBLE})
def order_events(order_id: int):
    events = _pedidos().store.events(order_id, forwarded_caller(Caller))
    return respond([EventOut.model_validate(event) for event in events])


@bp.post("/orders/<int:order_id>/cancel")
@operation("Cancel an order: release or return its stock, refund its payment (idempotent)",
           headers=CALLER, tags=TAGS, responses={
               200: OrderOut, 401: UNKNOWN_CALLER, 404: NOT_VISIBLE,
               409: "The order is rejected or failed, so there is nothing to cancel.",
               503: "The database, estoque or pagamentos is unavailable; cancel again.",
               504: UPSTREAM_SLOW})
def cancel_order(order_id: int):
    return respond(_order(_pedidos().cancellation.cancel(order_id, forwarded_caller(Caller))))
