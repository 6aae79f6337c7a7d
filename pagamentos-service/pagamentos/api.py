"""HTTP routes of pagamentos: validate, call one use case (a read: the store), serialize."""

from flask import Blueprint, Response, current_app

from pagamentos.bootstrap import Pagamentos
from pagamentos.domain import (
    PaymentStatus,
    card_last4,
    order_route_for_charge,
    order_route_for_closing,
)
from pagamentos.schemas import ChargeRequest, OrderClosureOut, PaymentListQuery, PaymentOut
from veloz.core.contracts import PaymentDeclined
from veloz.core.identity import Caller
from veloz.web.api import IDEMPOTENCY_KEY, operation, respond
from veloz.web.context import forwarded_caller
from veloz.web.idempotency import answers, key_from_request
from veloz.web.paging import split_page
from veloz.web.problems import problem_response

bp = Blueprint("payments", __name__)
TAGS = ("payments",)


def _pagamentos() -> Pagamentos:
    return current_app.extensions["pagamentos"]


@bp.post("/payments")
@operation("Charge an order", body=ChargeRequest, tags=TAGS, headers=[IDEMPOTENCY_KEY],
           responses={
               201: PaymentOut,
               402: "Declined; the stored payment is the `payment` member.",
               409: "The same Idempotency-Key is still running, or the order is closed "
                    "(order-closed: pedidos compensated it), or it already has an "
                    "approved payment, or one that asked for another "
                    "amount or method (payment-mismatch); `payment` is that payment. "
                    "payment-through-order when a person (not pedidos) charges: pay by "
                    "placing an order.",
               503: "The database or the payment processor is unavailable."})
def charge(body: ChargeRequest):
    if not forwarded_caller(Caller).is_internal:
        raise order_route_for_charge(body.order_id)
    # The stored fingerprint must not let anyone brute-force the card number back out of it.
    fingerprinted = body.model_copy(update={"card_number": card_last4(body.card_number)})
    key = key_from_request("POST /payments", fingerprinted)
    return answers().answer(key, lambda: _charge_answer(_pagamentos().payments.charge(body)))


def _charge_answer(payment: PaymentOut) -> Response:
    """201 with an approved payment; 402 with a declined one (stored all the same)."""
    if payment.status == PaymentStatus.APPROVED:
        return respond(payment, 201)
    return problem_response(PaymentDeclined(
        f"The payment was declined: {payment.decline_reason}.", payment=payment.model_dump()))


@bp.get("/payments")
@operation("List payments, oldest first", query=PaymentListQuery, tags=TAGS,
           responses={200: [PaymentOut]})
def list_payments(query: PaymentListQuery):
    rows, headers = split_page(_pagamentos().store.page(query), query)
    return respond(rows, 200, headers)


@bp.get("/payments/<int:payment_id>")
@operation("Read a payment", tags=TAGS, responses={200: PaymentOut})
def get_payment(payment_id: int):
    return respond(_pagamentos().store.get(payment_id))


@bp.post("/payments/<int:payment_id>/refund")
@operation("Refund a payment (idempotent)", tags=TAGS,
           responses={200: PaymentOut,
                      409: "A declined payment took no money to refund "
                           "(payment-not-refundable); a person refunding a standing payment "
                           "is sent to its order's cancel route (payment-through-order, with "
                           "`order_id` and `order_route`): only pedidos refunds here."})
def refund(payment_id: int):
    by_person = not forwarded_caller(Caller).is_internal
    return respond(_pagamentos().payments.refund(payment_id, by_person=by_person))


@bp.put("/closed-orders/<int:order_id>")
@operation("Close an order's payments: refund them and take no charge of it again (idempotent)",
           tags=TAGS,
           responses={200: OrderClosureOut,
                      409: "A person (not pedidos) asked: the order's money is given back by "
                           "cancelling the order (payment-through-order, with `order_id` and "
                           "`order_route`).",
                      503: "The database or the payment processor is unavailable."})
def close_order(order_id: int):
    if not forwarded_caller(Caller).is_internal:
        raise order_route_for_closing(order_id)
    return respond(_pagamentos().payments.close_order(order_id))
