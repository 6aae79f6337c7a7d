"""Use cases of pagamentos: each one a single transaction."""

import logging
import random
import time
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pagamentos import domain
from pagamentos.config import PagamentosSettings
from pagamentos.domain import PaymentStatus
from pagamentos.models import ONE_APPROVED_PER_ORDER, Payment
from pagamentos.schemas import ChargeRequest, PaymentListQuery, PaymentOut
from veloz import metrics
from veloz.contracts import OrderAlreadyPaid, PaymentMismatch
from veloz.db import Database
from veloz.errors import NotFound
from veloz.paging import SortKey, keyset_page

log = logging.getLogger(__name__)


class Payments:
    """Charges, refunds and reads of payments, with the fault switches of PagamentosSettings."""

    def __init__(self, db: Database, settings: PagamentosSettings,
                 draw: Callable[[], float] | None = None):
        self._db = db
        self._settings = settings
        self._draw = draw or random.Random().random  # noqa: S311 - a simulation, not security

    def charge(self, request: ChargeRequest) -> PaymentOut:
        """The stored payment, approved or declined."""
        self._obey_fault_switches()
        with self._db.transaction() as session:
            return self._charge(session, request)

    def refund(self, payment_id: int) -> PaymentOut:
        self._obey_fault_switches()
        with self._db.transaction() as session:
            payment = _locked(session, payment_id)
            status = domain.refunded_status(payment.status)
            if payment.status != status:
                payment.status = status
                session.flush()
                metrics.record_refund(payment.method)
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

    def _charge(self, session: Session, request: ChargeRequest) -> PaymentOut:
        _refuse_conflicting_charge(session, request)
        outcome = domain.charge_outcome(request.card_number,
                                        self._settings.payment_decline_rate, self._draw())
        payment = _insert(session, Payment(
            order_id=request.order_id, amount=request.amount, method=request.method,
            status=outcome.status, decline_reason=outcome.decline_reason,
            card_last4=domain.card_last4(request.card_number)))
        metrics.record_payment(payment.status, payment.decline_reason, payment.method)
        log.info("payment charged", extra={"payment_id": payment.id, "order_id": payment.order_id,
                                           "status": payment.status,
                                           "decline_reason": payment.decline_reason})
        return PaymentOut.model_validate(payment)


def _refuse_conflicting_charge(session: Session, request: ChargeRequest) -> None:
    """Charges of one order run one at a time (a transaction-scoped lock on the order id); a
    charge is refused when the order already has a payment asking for something else, or an
    approved one. Refunded payments no longer stand, so they free the order."""
    session.execute(select(func.pg_advisory_xact_lock(request.order_id)))
    standing = session.scalars(select(Payment).where(
        Payment.order_id == request.order_id, Payment.status != PaymentStatus.REFUNDED)).all()
    for payment in standing:
        if not domain.asks_the_same(payment, request):
            raise PaymentMismatch(
                f"Order {request.order_id} already has payment {payment.id} of {payment.amount} "
                f"by {payment.method}; a charge of {request.amount} by {request.method} is not "
                "a repeat of it.", payment=PaymentOut.model_validate(payment).model_dump())
        if payment.status == PaymentStatus.APPROVED:
            raise OrderAlreadyPaid(
                f"Order {request.order_id} already has an approved payment.",
                payment=PaymentOut.model_validate(payment).model_dump())


def _insert(session: Session, payment: Payment) -> Payment:
    """Flush now, so a concurrent approval of the same order surfaces as a 409 here."""
    session.add(payment)
    try:
        session.flush()
    except IntegrityError as error:
        if _violated_constraint(error) != ONE_APPROVED_PER_ORDER:
            raise
        raise OrderAlreadyPaid(
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
