"""`Idempotency-Key` at the edge: a repeated request gets the answer stored for its key.

Use cases know nothing of HTTP; `EdgeReplay.answer` wraps one from a route in three short
transactions of the service's key store (veloz.data.idempotency):

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
"""

import contextlib
from collections.abc import Callable

from flask import Flask, Response, current_app, request
from pydantic import BaseModel
from sqlalchemy import Table
from sqlalchemy.exc import SQLAlchemyError

from veloz.core.errors import Unprocessable
from veloz.data.idempotency import (
    HEADER,
    MAX_KEY_LENGTH,
    IdempotencyInProgress,
    IdempotencyKey,
    IdempotentAnswers,
    StoredAnswer,
    fingerprint_of,
)
from veloz.web.context import environ_key

_KEY_IN_ENVIRON = environ_key(HEADER)  # most orders come without one


def keep_answers(app: Flask, table: Table, takeover_seconds: float = 60.0) -> None:
    """Give a service with a database its stored answers (see `answers`)."""
    app.extensions["answers"] = EdgeReplay(
        IdempotentAnswers(app.extensions["database"], table, takeover_seconds))


def answers() -> "EdgeReplay":
    """The current service's stored answers, for a route."""
    return current_app.extensions["answers"]


def key_from_request(scope: str, body: BaseModel) -> IdempotencyKey | None:
    """The request's key with a fingerprint of its validated body, or None without a key."""
    key = request.environ.get(_KEY_IN_ENVIRON)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise Unprocessable(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.",
                            errors=[{"field": HEADER, "message": "invalid length"}])
    return IdempotencyKey(scope, key, fingerprint_of(body))


def stored_answer(response: Response) -> StoredAnswer:
    """What to store of an answer to replay it exactly: same status, same bytes."""
    return StoredAnswer(response.status_code, response.get_data(as_text=True),
                        response.content_type or "application/json")


def replay(answer: StoredAnswer) -> Response:
    response = Response(answer.body, answer.status, content_type=answer.content_type)
    response.headers["Idempotent-Replayed"] = "true"
    return response


class EdgeReplay:
    """The routes' side of one service's stored answers (`store`, its `idempotency_keys`)."""

    def __init__(self, store: IdempotentAnswers):
        self.store = store

    def answer(self, key: IdempotencyKey | None, produce: Callable[[], Response],
               unanswered: Callable[[], Response | None] | None = None) -> Response:
        """Replay the answer stored under `key`, or produce, store and return it.
        `unanswered` decides for a key claimed earlier and not answered yet: an answer to
        store, or None to run the use case again."""
        if key is None:
            return produce()
        claim = self.store.claim(key)
        if claim.answer is not None:
            return replay(claim.answer)
        if not claim.fresh and unanswered is not None:
            settled = unanswered()
            if settled is not None:
                return self._remember(key, settled)
        elif not claim.fresh:
            self.store.take_over(key, claim)
        try:
            response = produce()
        except IdempotencyInProgress:
            raise  # the claim is another request's
        except BaseException:
            with contextlib.suppress(SQLAlchemyError):  # else the claim ages into a takeover
                self.store.release(key)
            raise
        return self._remember(key, response)

    def _remember(self, key: IdempotencyKey, response: Response) -> Response:
        self.store.remember(key, stored_answer(response))
        return response
