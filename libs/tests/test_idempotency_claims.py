"""Claiming an Idempotency-Key on a real PostgreSQL: fresh, taken, and taken-then-released."""

import dataclasses

import pytest
import sqlalchemy as sa

from veloz.core.errors import Unprocessable
from veloz.data.db import Database, utcnow
from veloz.data.idempotency import IdempotencyKey, IdempotentAnswers, idempotency_table
from veloz.dev.devdb import recreate_database

metadata = sa.MetaData()
keys = idempotency_table(metadata)
KEY = IdempotencyKey("POST /things", "k-1", "fingerprint-a")


@pytest.fixture
def db(postgres_server_url):
    database = Database(recreate_database(postgres_server_url, "veloz_keys_test"),
                        name="veloz-keys-test", pool_size=2)
    metadata.create_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def answers(db):
    return IdempotentAnswers(db, keys)


def claimed_by_another_request(db: Database, key: IdempotencyKey) -> None:
    with db.engine.begin() as connection:
        connection.execute(sa.insert(keys).values(scope=key.scope, key=key.key,
                                                  fingerprint=key.fingerprint,
                                                  created_at=utcnow()))


class ReleasedBeforeRead:
    """The read of a taken key, run just after the request holding it released it (its use
    case failed), as a race between two requests with the same key would have it."""

    def __init__(self, stored, db: Database):
        self.stored, self.db, self.reads = stored, db, 0

    def run(self, cursor, **values):
        self.reads += 1
        with self.db.engine.begin() as connection:
            connection.execute(sa.delete(keys))
        return self.stored.run(cursor, **values)


def test_a_new_key_is_claimed_fresh(answers):
    assert answers.claim(KEY).fresh


def test_a_key_claimed_by_another_request_is_not_claimed_again(answers, db):
    claimed_by_another_request(db, KEY)

    claim = answers.claim(KEY)

    assert (claim.fresh, claim.answer) == (False, None)


def test_the_same_key_with_another_body_is_refused(answers, db):
    claimed_by_another_request(db, KEY)

    with pytest.raises(Unprocessable):
        answers.claim(dataclasses.replace(KEY, fingerprint="fingerprint-b"))


def test_a_key_released_between_our_insert_and_our_read_is_claimed_again(answers, db):
    claimed_by_another_request(db, KEY)
    racing = ReleasedBeforeRead(answers._sql.stored, db)
    answers._sql = dataclasses.replace(answers._sql, stored=racing)

    claim = answers.claim(KEY)

    assert claim.fresh
    assert racing.reads == 1
