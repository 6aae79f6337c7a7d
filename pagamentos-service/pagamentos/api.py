"""Routes of pagamentos: validate, call one use case, serialize."""

from flask import Blueprint, current_app

from pagamentos.domain import card_last4
from pagamentos.schemas import ChargeRequest, PaymentListQuery, PaymentOut
from pagamentos.services import Payments
from veloz.api import operation, respond
from veloz.idempotency import key_from_request
from veloz.paging import split_page

blueprint = Blueprint("payments", __name__)
TAGS = ("payments",)


def payments() -> Payments:
    return current_app.extensions["payments"]


@blueprint.post("/payments")
@operation("Charge an order", body=ChargeRequest, tags=TAGS,
           responses={201: PaymentOut, 402: None, 409: None, 503: None})
def charge(body: ChargeRequest):
    # The stored fingerprint must not let anyone brute-force the card number back out of it.
    fingerprinted = body.model_copy(update={"card_number": card_last4(body.card_number)})
    return payments().charge(body, key_from_request("POST /payments", fingerprinted))


@blueprint.get("/payments")
@operation("List payments, oldest first", query=PaymentListQuery, tags=TAGS,
           responses={200: [PaymentOut]})
def list_payments(query: PaymentListQuery):
    rows, headers = split_page(payments().page(query), query)
    return respond(rows, 200, headers)


@blueprint.get("/payments/<int:payment_id>")
@operation("Read a payment", tags=TAGS, responses={200: PaymentOut, 404: None})
def get_payment(payment_id: int):
    return respond(payments().get(payment_id))


@blueprint.post("/payments/<int:payment_id>/refund")
@operation("Refund a payment (idempotent)", tags=TAGS,
           responses={200: PaymentOut, 404: None, 409: None, 503: None})
def refund(payment_id: int):
    return respond(payments().refund(payment_id))
