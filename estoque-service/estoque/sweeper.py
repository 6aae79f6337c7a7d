"""Releases expired reservations: `python -m estoque.sweeper`. Safe to run in several
replicas, since each is taken with SKIP LOCKED and released in its own transaction."""

from functools import partial

from estoque import services
from estoque.config import EstoqueSettings
from veloz.data.db import Database
from veloz.run.jobs import Job, drain, serve


def sweep_once(db: Database, batch_size: int) -> int:
    """Release up to `batch_size` expired reservations; returns how many were released."""
    return drain(lambda: services.release_expired_hold(db), batch_size)


def main() -> None:
    settings = EstoqueSettings.from_env()
    serve(Job("estoque-sweeper", "released expired reservations",
              lambda db: partial(services.release_expired_hold, db),
              settings.sweep_interval_seconds, settings.sweep_batch_size), settings)


if __name__ == "__main__":
    main()
