"""Use cases of pagamentos: a charge and a refund, each one transaction of the PaymentStore,
with the fault switches of PagamentosSettings before it and the business metrics after it.
Reading payments has no use case of its own: the routes ask the PaymentStore."""

import logging
import random
import time
from collections.abc import Callable

from pagamentos import domain, telemetry
from pagamentos.config import PagamentosSettings
from pagamentos.schemas import ChargeRequest, OrderClosureOut, PaymentOut
from pagamentos.store import PaymentStore
from veloz.telemetry.logs import log_info

log = logging.getLogger(__name__)


class Payments:
    """Charges and refunds, with the fault switches of PagamentosSettings."""

    def __init__(self, store: PaymentStore, settings: PagamentosSettings,
                 draw: Callable[[], float] | None = None):
        self._store = store
        self._settings = settings
        self._draw = draw or random.Random().random  # noqa: S311 - a simulation, not security

    def charge(self, request: ChargeRequest) -> PaymentOut:
        """The stored payment, approved or declined."""
        self._obey_fault_switches()
        outcome = domain.charge_outcome(request.card_number,
                                        self._settings.payment_decline_rate, self._draw())
        payment = self._store.charge(request, outcome)
        telemetry.record_payment(payment.status, payment.decline_reason, payment.method)
        log_info(log, "payment charged", {  # one a charge: logging's record costs ~55k instructions
            "payment_id": payment.id, "order_id": payment.order_id, "status": payment.status,
            "decline_reason": payment.decline_reason})
        return payment

    def refund(self, payment_id: int, by_person: bool = False) -> PaymentOut:
        """Refund a payment (a repeat answers it unchanged). `by_person`: a user the gateway
        vouches for, who may not refund a standing payment here (see ThroughTheOrder)."""
        self._obey_fault_switches()
        payment, refunded = self._store.refund(payment_id, by_person)
        if refunded:
            _refunded(payment)
        return payment

    def close_order(self, order_id: int) -> OrderClosureOut:
        """Refund the order's approved payment and refuse its later charges (store.close)."""
        self._obey_fault_switches()
        closure, refunded = self._store.close(order_id)
        for payment in refunded:
            _refunded(payment)
        log.info("order closed", extra={"order_id": order_id,
                                        "refunded": [payment.id for payment in refunded]})
        return closure

    def _obey_fault_switches(self) -> None:
        if domain.processor_fails(self._settings.payment_failure_rate, self._draw()):
            raise domain.ProcessorUnavailable("The payment processor is unavailable; try again.",
                                              headers={"Retry-After": "1"})
        if self._settings.payment_latency_ms:
            time.sleep(self._settings.payment_latency_ms / 1000)


def _refunded(payment: PaymentOut) -> None:
    telemetry.record_refund(payment.method)
    log.info("payment refunded", extra={"payment_id": payment.id, "order_id": payment.order_id})
