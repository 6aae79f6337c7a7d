"""estoque's use cases wired in one place, for the web app (app.py), the sweeper (sweeper.py)
and tests: no Flask here."""

from dataclasses import dataclass

from estoque.config import EstoqueSettings
from estoque.services import Reservations
from estoque.store import StockStore
from veloz.data.db import Database

NAME = "estoque-service"


@dataclass(frozen=True)
class Estoque:
    """The store (reads and item administration go straight to it) and the use cases."""

    store: StockStore
    reservations: Reservations


def build(settings: EstoqueSettings, db: Database) -> Estoque:
    store = StockStore(db)
    return Estoque(store, Reservations(store, settings.reservation_ttl_seconds))
