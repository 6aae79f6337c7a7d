"""pagamentos' use cases wired in one place, for the web app (app.py) and tests: no Flask
here."""

from collections.abc import Callable
from dataclasses import dataclass

from pagamentos.config import PagamentosSettings
from pagamentos.services import Payments
from pagamentos.store import PaymentStore
from veloz.data.db import Database

NAME = "pagamentos-service"


@dataclass(frozen=True)
class Pagamentos:
    """The store (reads go straight to it) and the use cases."""

    store: PaymentStore
    payments: Payments


def build(settings: PagamentosSettings, db: Database,
          draw: Callable[[], float] | None = None) -> Pagamentos:
    store = PaymentStore(db)
    return Pagamentos(store, Payments(store, settings, draw))
