"""Reconciliation, as payment systems do it: do pedidos' orders and pagamentos' payments agree?

Two kinds of disagreement count (telemetry.DISAGREEMENT_KINDS):

- paid_without_payment: an order is `paid` but the payment it names no longer stands approved
  (refunded, or gone): money given back for goods that stay sold.
- payment_without_paid_order: a payment stands approved but no paid order names it: money
  taken for nothing.

Only records that last changed more than the grace period ago count, so a saga still running,
or one the recovery worker has yet to finish, is never a finding. pagamentos is asked over
HTTP (its own listing, paged); its database is never read from here. It heals nothing: every
finding is logged with its ids and counted in `pedidos_books_disagreements{kind}`, which fires
BooksDisagree; an operator decides (monitoring/RUNBOOK.md).

Payments are read before orders: an order seen paid now that was paid before the cutoff was
paid when the payments were read, so a cancel that lands between the two reads is the only
race left, and it lasts milliseconds (the alert waits minutes).
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pedidos import telemetry
from pedidos.clients import UPSTREAM_DOWN, PagamentosClient
from pedidos.store import OrderStore
from veloz.data.db import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Findings:
    """Ids of what disagrees: orders paid without a standing payment, payments approved
    without a paid order."""

    paid_without_payment: tuple[int, ...] = ()
    payment_without_paid_order: tuple[int, ...] = ()

    def counts(self) -> dict[str, int]:
        return {"paid_without_payment": len(self.paid_without_payment),
                "payment_without_paid_order": len(self.payment_without_paid_order)}


class Reconciliation:
    def __init__(self, store: OrderStore, pagamentos: PagamentosClient, grace_seconds: float,
                 clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.pagamentos = pagamentos
        self.grace = timedelta(seconds=grace_seconds)
        self.clock = clock

    def run(self) -> Findings:
        """Compare both books once, record the counts and log every finding."""
        cutoff = self.clock() - self.grace
        approved = self.pagamentos.approved_payments()
        paid = self.store.paid_with_payment()
        standing = {payment.id for payment in approved}
        paying = {order.payment_id for order in paid}
        findings = Findings(
            tuple(order.id for order in paid
                  if order.updated_at <= cutoff and order.payment_id not in standing),
            tuple(payment.id for payment in approved
                  if payment.updated_at <= cutoff and payment.id not in paying))
        telemetry.record_reconciliation(findings.counts())
        _log(findings)
        return findings


class Every:
    """Runs a reconciliation at most once per interval, from a loop that turns more often
    (the recovery worker's), and survives pagamentos being away: the last counts stand and
    the last-success timestamp ages, which the runbook watches."""

    def __init__(self, reconciliation: Reconciliation, interval_seconds: float,
                 monotonic: Callable[[], float] = time.monotonic):
        self.reconciliation = reconciliation
        self.interval = interval_seconds
        self.monotonic = monotonic
        self.next_run = monotonic()

    def run_if_due(self) -> Findings | None:
        if self.monotonic() < self.next_run:
            return None
        self.next_run = self.monotonic() + self.interval
        try:
            return self.reconciliation.run()
        except UPSTREAM_DOWN as error:
            log.warning("reconciliation postponed: pagamentos unavailable",
                        extra={"error": error.detail})
            return None


def _log(findings: Findings) -> None:
    for order_id in findings.paid_without_payment:
        log.error("books disagree: order paid without a standing payment",
                  extra={"kind": "paid_without_payment", "order_id": order_id})
    for payment_id in findings.payment_without_paid_order:
        log.error("books disagree: payment approved without a paid order",
                  extra={"kind": "payment_without_paid_order", "payment_id": payment_id})
