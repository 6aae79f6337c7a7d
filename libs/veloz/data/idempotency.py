"""`Idempotency-Key` storage: the claims and stored answers of one service's keys.

veloz.web.idempotency wraps a keyed request's use case in three short transactions of this
store's: claim the key with a fingerprint of the validated body (step 1; the same key with
another body is a 422), run the use case (step 2), store its rendered answer (step 3). Nothing
here knows HTTP beyond the header's name: an answer is a status, a body and a content type.
The key's own statements run on a plain connection (no ORM session), each one committing by
itself (no statement of a key needs another's to commit with it): they sit on the path of every
keyed request.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    select,
)
from sqlalchemy.dialects.postgresql import insert

from veloz.core.errors import Conflict, Unprocessable
from veloz.data.db import Database, DriverStatement, utcnow

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
CLAIM_ATTEMPTS = 3  # a key claimed and released again this often in a row is busy: 409


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys", metadata,
        Column("scope", String(64), primary_key=True),
        Column("key", String(MAX_KEY_LENGTH), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("status_code", Integer),
        Column("content_type", String(64)),
        Column("response_body", Text),
        Column("created_at", DateTime(timezone=True), nullable=False,
               default=lambda: datetime.now(UTC)),
    )


class IdempotencyInProgress(Conflict):
    title, slug = "Request in progress", "idempotency-in-progress"

    def __init__(self, detail: str | None = None, **members) -> None:
        super().__init__(detail or "A request with this Idempotency-Key is still running; "
                         "retry shortly.", headers={"Retry-After": "1"}, **members)


@dataclass(frozen=True)
class IdempotencyKey:
    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class StoredAnswer:
    """An answer exactly as first sent: same status, same bytes."""

    status: int
    body: str
    content_type: str


@dataclass(frozen=True)
class Claim:
    """What claiming a key found: a fresh claim, a stored answer, or an unanswered claim."""

    fresh: bool
    answer: StoredAnswer | None
    claimed_at: datetime


def fingerprint_of(body: BaseModel) -> str:
    """Same validated body, same fingerprint, whatever the JSON's spacing or key order."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


class IdempotentAnswers:
    """The stored answers of one service (its `idempotency_keys` table)."""

    def __init__(self, db: Database, table: Table, takeover_seconds: float = 60.0):
        self._db = db
        self._takeover = timedelta(seconds=takeover_seconds)
        self._sql = _KeyStatements.of(table)

    def claim(self, key: IdempotencyKey) -> Claim:
        """Step 1: claim the key, or learn what an earlier claim holds. A claim released
        between our insert and our read (its use case failed) is claimed again."""
        with self._db.statements() as cursor:
            for _attempt in range(CLAIM_ATTEMPTS):
                inserted = self._sql.claim.run(cursor, **_named(key), now=utcnow(),
                                               fingerprint_of_body=key.fingerprint).fetchone()
                if inserted:
                    return Claim(True, None, inserted.created_at)
                stored = self._sql.stored.run(cursor, **_named(key)).fetchone()
                if stored is not None:
                    break
            else:
                raise IdempotencyInProgress
        if stored.fingerprint != key.fingerprint:
            raise Unprocessable(f"This {HEADER} was already used with a different request body.")
        answer = None if stored.status_code is None else StoredAnswer(
            stored.status_code, stored.response_body, stored.content_type)
        return Claim(False, answer, stored.created_at)

    def take_over(self, key: IdempotencyKey, claim: Claim) -> None:
        """Take a claim old enough to be dead (one repeat only) so that the use case runs
        again; IdempotencyInProgress for a younger one."""
        if utcnow() - claim.claimed_at < self._takeover:
            raise IdempotencyInProgress
        with self._db.statements() as cursor:
            taken = self._sql.take_over.run(cursor, **_named(key), claimed_at=claim.claimed_at,
                                            now=utcnow()).fetchone()
        if taken is None:
            raise IdempotencyInProgress

    def remember(self, key: IdempotencyKey, answer: StoredAnswer) -> None:
        """Step 3: store the answer under the key a fresh or taken-over claim holds."""
        with self._db.statements() as cursor:
            self._sql.remember.run(cursor, **_named(key), answer_status=answer.status,
                                   answer_body=answer.body, answer_type=answer.content_type)

    def release(self, key: IdempotencyKey) -> None:
        """Drop a claim not answered yet (its use case failed and rolled back)."""
        with self._db.statements() as cursor:
            self._sql.release.run(cursor, **_named(key))


def _named(key: IdempotencyKey) -> dict[str, str]:
    return {"key_scope": key.scope, "key_name": key.key}


@dataclass(frozen=True)
class _KeyStatements:
    """The statements on a service's keys, built once: they run on every keyed request."""

    claim: DriverStatement
    stored: DriverStatement
    take_over: DriverStatement
    remember: DriverStatement
    release: DriverStatement

    @classmethod
    def of(cls, table: Table) -> "_KeyStatements":
        named = (table.c.scope == bindparam("key_scope"), table.c.key == bindparam("key_name"))
        unanswered = table.c.status_code.is_(None)
        of = DriverStatement.of
        return cls(
            claim=of(insert(table).values(
                scope=bindparam("key_scope"), key=bindparam("key_name"),
                fingerprint=bindparam("fingerprint_of_body"), created_at=bindparam("now"))
                     .on_conflict_do_nothing().returning(table.c.created_at)),
            stored=of(select(table).where(*named)),
            take_over=of(table.update()
                         .where(*named, table.c.created_at == bindparam("claimed_at"), unanswered)
                         .values(created_at=bindparam("now")).returning(table.c.key)),
            remember=of(table.update().where(*named).values(
                status_code=bindparam("answer_status"), response_body=bindparam("answer_body"),
                content_type=bindparam("answer_type"))),
            release=of(table.delete().where(*named, unanswered)))
