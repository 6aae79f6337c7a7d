"""Releases expired reservations: `python -m estoque.sweeper`. Safe to run in several
replicas, since each is taken with SKIP LOCKED and released in its own transaction."""

from estoque.bootstrap import build
from estoque.config import EstoqueSettings
from estoque.services import Reservations
from veloz.run.jobs import Job, drain, serve


def sweep_once(reservations: Reservations, batch_size: int) -> int:
    """Release up to `batch_size` expired reservations; returns how many were released."""
    return drain(reservations.release_next_expired, batch_size)


def main() -> None:
    settings = EstoqueSettings.from_env()
    serve(Job("estoque-sweeper", "released expired reservations",
              lambda db: build(settings, db).reservations.release_next_expired,
              settings.sweep_interval_seconds, settings.sweep_batch_size), settings)


if __name__ == "__main__":
    main()
