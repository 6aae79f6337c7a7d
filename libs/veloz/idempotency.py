"""`Idempotency-Key` replay: the first response is stored in the same transaction as the work.

A concurrent duplicate blocks on the key's primary key until the first transaction ends, then
replays what it stored; if the first rolled back, the duplicate does the work itself.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Response, request
from pydantic import BaseModel
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from veloz.errors import Unprocessable

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


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


@dataclass(frozen=True)
class IdempotencyKey:
    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class StoredResponse:
    """A response exactly as first sent: same status, same bytes."""

    status: int
    body: str
    content_type: str

    @classmethod
    def of(cls, response: Response) -> "StoredResponse":
        return cls(response.status_code, response.get_data(as_text=True), response.content_type)

    def replay(self) -> Response:
        response = Response(self.body, self.status, content_type=self.content_type)
        response.headers["Idempotent-Replayed"] = "true"
        return response


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


def claim(session: Session, table: Table, key: IdempotencyKey) -> StoredResponse | None:
    """Reserve the key for this transaction, or return the response stored under it."""
    inserted = session.execute(
        insert(table).values(scope=key.scope, key=key.key, fingerprint=key.fingerprint)
        .on_conflict_do_nothing().returning(table.c.key)
    ).first()
    if inserted:
        return None
    stored = session.execute(
        select(table).where(table.c.scope == key.scope, table.c.key == key.key)
    ).one()
    if stored.fingerprint != key.fingerprint:
        raise Unprocessable(f"This {HEADER} was already used with a different request body.")
    return StoredResponse(stored.status_code, stored.response_body, stored.content_type)


def remember(session: Session, table: Table, key: IdempotencyKey, response: StoredResponse):
    session.execute(
        table.update()
        .where(table.c.scope == key.scope, table.c.key == key.key)
        .values(status_code=response.status, response_body=response.body,
                content_type=response.content_type)
    )


def replay_or_run(session: Session, table: Table, key: IdempotencyKey | None,
                  produce: Callable[[], Response]) -> Response:
    """Inside the caller's transaction: replay the stored response, or produce and store it."""
    if key is not None and (stored := claim(session, table, key)) is not None:
        return stored.replay()
    response = produce()
    if key is not None:
        remember(session, table, key, StoredResponse.of(response))
    return response
