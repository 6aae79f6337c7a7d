"""Routes of pagamentos: validate, call one use case, serialize."""

from flask import Blueprint, Response, current_app

from pagamentos.domain import PaymentDeclined, PaymentStatus, card_last4
from pagamentos.schemas import ChargeRequest, PaymentListQuery, PaymentOut
from pagamentos.services import Payments
from veloz.api import IDEMPOTENCY_KEY, operation, respond
from veloz.idempotency import answers, key_from_request
from veloz.paging import split_page
from veloz.problems import problem_response

blueprint = Blueprint("payments", __name__)
TAGS = ("payments",)


def payments() -> Payments:
    return current_app.extensions["payments"]


@blueprint.post("/payments")
@operation("Charge an order", body=ChargeRequest, tags=TAGS, headers=[IDEMPOTENCY_KEY],
           responses={
               201: PaymentOut,
               402: "Declined; the stored payment is the `payment` member.",
               409: "The same Idempotency-Key is still running, or the order already has an "
                    "approved payment, or one that asked for another "
                    "amount or method (payment-mismatch); `payment` is that payment.",
               503: "The database or the payment processor is unavailable."})
def charge(body: ChargeRequest):
    # The stored fingerprint must not let anyone brute-force the card number back out of it.
    fingerprinted = body.model_copy(update={"card_number": card_last4(body.card_number)})
    key = key_from_request("POST /payments", fingerprinted)
    return answers().answer(key, lambda: _charge_answer(payments().charge(body)))


def _charge_answer(payment: PaymentOut) -> Response:
    """201 with an approved payment; 402 with a declined one (stored all the same)."""
    if payment.status == PaymentStatus.APPROVED:
        return respond(payment, 201)
    return problem_response(PaymentDeclined(
        f"The payment was declined: {payment.decline_reason}.", payment=payment.model_dump()))


@blueprint.get("/payments")
@operation("List payments, oldest first", query=PaymentListQuery, tags=TAGS,
           responses={200: [PaymentOut]})
def list_payments(query: PaymentListQuery):
    rows, headers = split_page(payments().page(query), query)
    return respond(rows, 200, headers)


@blueprint.get("/payments/<int:payment_id>")
@operation("Read a payment", tags=TAGS, responses={200: PaymentOut})
def get_payment(payment_id: int):
    return respond(payments().get(payment_id))


@blueprint.post("/payments/<int:payment_id>/refund")
@operation("Refund a payment (idempotent)", tags=TAGS,
           responses={200: PaymentOut, 409: "A declined payment took no money to refund."})
def refund(payment_id: int):
    return respond(payments().refund(payment_id))
