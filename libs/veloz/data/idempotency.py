"""`Idempotency-Key` at the edge: a repeated request gets the answer stored for its key.

Use cases know nothing of HTTP; `IdempotentAnswers.answer` wraps one from a route in three
short transactions of its own:

1. claim the key with a fingerprint of the validated body (the same key with another body
   is a 422);
2. run the use case and render its answer;
3. store the rendered answer (status, body, content type) under the key.

A repeat that finds an answer replays it. A repeat that finds the key claimed but not yet
answered is running beside the first request, or the first died between 1 and 3: the route
may say what then (pedidos answers from the order the key placed); by default it is a 409
"in progress" until the claim is `takeover_seconds` old, after which the use case runs again.
That is safe because every use case behind a key is itself repeatable (an order is placed
once per key, a reservation once per order, a payment is never approved twice for an order).
A use case that fails with an exception leaves no claim behind: its work rolled back.
The key's own statements run on a plain connection (no ORM session), each one committing by
itself (no statement of a key needs another's to commit with it): they sit on the path of every
keyed request.
"""

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask, Response, current_app, request
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
from sqlalchemy.exc import SQLAlchemyError

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

    @classmethod
    def of(cls, response: Response) -> "StoredAnswer":
        return cls(response.status_code, response.get_data(as_text=True),
                   response.content_type or "application/json")

    def replay(self) -> Response:
        response = Response(self.body, self.status, content_type=self.content_type)
        response.headers["Idempotent-Replayed"] = "true"
        return response


@dataclass(frozen=True)
class Claim:
    """What claiming a key found: a fresh claim, a stored answer, or an unanswered claim."""

    fresh: bool
    answer: StoredAnswer | None
    claimed_at: datetime


def keep_answers(app: Flask, table: Table, takeover_seconds: float = 60.0) -> None:
    """Give a service with a database its stored answers (see `answers`)."""
    app.extensions["answers"] = IdempotentAnswers(app.extensions["database"], table,
                                                  takeover_seconds)


def answers() -> "IdempotentAnswers":
    """The current service's stored answers, for a route."""
    return current_app.extensions["answers"]


def key_from_request(scope: str, body: BaseModel) -> IdempotencyKey | None:
    """The request's key with a fingerprint of its validated body, or None without a key."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise Unprocessable(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.",
                            errors=[{"field": HEADER, "message": "invalid length"}])
    return IdempotencyKey(scope, key, fingerprint_of(body))


def fingerprint_of(body: BaseModel) -> str:
    """Same validated body, same fingerprint, whatever the JSON's spacing or key order."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


class IdempotentAnswers:
    """The stored answers of one service (its `idempotency_keys` table)."""

    def __init__(self, db: Database, table: Table, takeover_seconds: float = 60.0):
        self._db = db
        self._takeover = timedelta(seconds=takeover_seconds)
        self._sql = _KeyStatements.of(table)

    def answer(self, key: IdempotencyKey | None, produce: Callable[[], Response],
               unanswered: Callable[[], Response | None] | None = None) -> Response:
        """Replay the answer stored under `key`, or produce, store and return it.
        `unanswered` decides for a key claimed earlier and not answered yet: an answer to
        store, or None to run the use case again."""
        if key is None:
            return produce()
        claim = self.claim(key)
        if claim.answer is not None:
            return claim.answer.replay()
        if not claim.fresh and unanswered is not None:
            settled = unanswered()
            if settled is not None:
                return self._remember(key, settled)
        elif not claim.fresh:
            self._take_over(key, claim)
        try:
            response = produce()
        except IdempotencyInProgress:
            raise  # the claim is another request's
        except BaseException:
            with contextlib.suppress(SQLAlchemyError):  # else the claim ages into a takeover
                self._release(key)
            raise
        return self._remember(key, response)

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

    def _take_over(self, key: IdempotencyKey, claim: Claim) -> None:
        """Take a claim old enough to be dead (one repeat only) so that the use case runs
        again; IdempotencyInProgress for a younger one."""
        if utcnow() - claim.claimed_at < self._takeover:
            raise IdempotencyInProgress
        with self._db.statements() as cursor:
            taken = self._sql.take_over.run(cursor, **_named(key), claimed_at=claim.claimed_at,
                                            now=utcnow()).fetchone()
        if taken is None:
            raise IdempotencyInProgress

    def _remember(self, key: IdempotencyKey, response: Response) -> Response:
        stored = StoredAnswer.of(response)
        with self._db.statements() as cursor:
            self._sql.remember.run(cursor, **_named(key), answer_status=stored.status,
                                   answer_body=stored.body, answer_type=stored.content_type)
        return response

    def _release(self, key: IdempotencyKey) -> None:
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
