"""Use cases of pagamentos: each one a single transaction."""

import logging
import random
import time
from collections.abc import Callable

from flask import Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagamentos import domain
from pagamentos.config import PagamentosSettings
from pagamentos.domain import PaymentStatus
from pagamentos.models import ONE_APPROVED_PER_ORDER, Payment, idempotency_keys
from pagamentos.schemas import ChargeRequest, PaymentListQuery, PaymentOut
from veloz.api import respond
from veloz.db import Database
from veloz.errors import NotFound
from veloz.idempotency import IdempotencyKey, replay_or_run
from veloz.paging import SortKey, keyset_page
from veloz.problems import problem_response

log = logging.getLogger(__name__)


class Payments:
    """Charges, refunds and reads of payments, with the fault switches of PagamentosSettings."""

    def __init__(self, db: Database, settings: PagamentosSettings,
                 draw: Callable[[], float] | None = None):
        self._db = db
        self._settings = settings
        self._draw = draw or random.Random().random  # noqa: S311 - a simulation, not security

    def charge(self, request: ChargeRequest, key: IdempotencyKey | None) -> Response:
        """201 approved or 402 declined; both are stored and replayed under the same key."""
        self._obey_fault_switches()
        with self._db.transaction() as session:
            return replay_or_run(session, idempotency_keys, key,
                                 lambda: self._charge(session, request))

    def refund(self, payment_id: int) -> PaymentOut:
        self._obey_fault_switches()
        with self._db.transaction() as session:
            payment = _locked(session, payment_id)
            status = domain.refunded_status(payment.status)
            if payment.status != status:
                payment.status = status
                session.flush()
                log.info("payment refunded", extra={"payment_id": payment.id,
                                                    "order_id": payment.order_id})
            return PaymentOut.model_validate(payment)

    def get(self, payment_id: int) -> PaymentOut:
        with self._db.reading() as session:
            return PaymentOut.model_validate(_found(session.get(Payment, payment_id), payment_id))

    def page(self, query: PaymentListQuery) -> list[PaymentOut]:
        """One page plus one extra row that tells whether a next page exists."""
        statement = keyset_page(_filtered(query), [SortKey(Payment.id)], query,
                                None if query.after is None else (query.after,))
        with self._db.reading() as session:
            return [PaymentOut.model_validate(row) for row in session.scalars(statement)]

    def _obey_fault_switches(self) -> None:
        if domain.processor_fails(self._settings.payment_failure_rate, self._draw()):
            raise domain.ProcessorUnavailable("The payment processor is unavailable; try again.",
                                              headers={"Retry-After": "1"})
        if self._settings.payment_latency_ms:
            time.sleep(self._settings.payment_latency_ms / 1000)

    def _charge(self, session: Session, request: ChargeRequest) -> Response:
        _refuse_if_paid(session, request.order_id)
        outcome = domain.charge_outcome(request.card_number,
                                        self._settings.payment_decline_rate, self._draw())
        payment = _insert(session, Payment(
            order_id=request.order_id, amount=request.amount, method=request.method,
            status=outcome.status, decline_reason=outcome.decline_reason,
            card_last4=domain.card_last4(request.card_number)))
        log.info("payment charged", extra={"payment_id": payment.id, "order_id": payment.order_id,
                                           "status": payment.status,
                                           "decline_reason": payment.decline_reason})
        return _charge_response(PaymentOut.model_validate(payment))


def _charge_response(payment: PaymentOut) -> Response:
    if payment.status == PaymentStatus.APPROVED:
        return respond(payment, 201)
    declined = domain.PaymentDeclined(f"The payment was declined: {payment.decline_reason}.",
                               payment=payment.model_dump())
    return problem_response(declined)


def _refuse_if_paid(session: Session, order_id: int) -> None:
    approved = select(Payment.id).where(Payment.order_id == order_id,
                                        Payment.status == PaymentStatus.APPROVED)
    if session.scalar(approved) is not None:
        raise domain.OrderAlreadyPaid(f"Order {order_id} already has an approved payment.")


def _insert(session: Session, payment: Payment) -> Payment:
    """Flush now, so a concurrent approval of the same order surfaces as a 409 here."""
    session.add(payment)
    try:
        session.flush()
    except IntegrityError as error:
        if _violated_constraint(error) != ONE_APPROVED_PER_ORDER:
            raise
        raise domain.OrderAlreadyPaid(
            f"Order {payment.order_id} already has an approved payment.") from None
    return payment


def _violated_constraint(error: IntegrityError) -> str | None:
    diagnostics = getattr(error.orig, "diag", None)
    return getattr(diagnostics, "constraint_name", None)


def _locked(session: Session, payment_id: int) -> Payment:
    return _found(session.get(Payment, payment_id, with_for_update=True), payment_id)


def _found(payment: Payment | None, payment_id: int) -> Payment:
    if payment is None:
        raise NotFound(f"Payment {payment_id} does not exist.")
    return payment


def _filtered(query: PaymentListQuery):
    statement = select(Payment)
    if query.order_id is not None:
        statement = statement.where(Payment.order_id == query.order_id)
    if query.status is not None:
        statement = statement.where(Payment.status == query.status)
    return statement
