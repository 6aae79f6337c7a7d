"""What every service does around each request (its id, its metrics, its trace, the drain),
as steps that one Flask hook per phase runs in turn.

A step is what a request hook would be, handed the request and `flask.g` instead of reading
them through Flask's proxies. Flask calls each hook through its own dispatch, and each hook
then looks the request and `g` up again: about 34k instructions a request over the eleven
hooks every service had (bench/README.md), five requests per paid order. Here the request
and `g` are looked up once per phase.

The order is Flask's: `before` steps in the order they were added (the first that raises
ends the phase: its error is the answer); `after` and `teardown` steps in the reverse order.
An app's own hooks (the gateway's rate limit) run as Flask runs them, after every `before`
step and, for `after` and `teardown`, before every step.

A step states the answer's headers that are its own (the request id, the caller's budget)
with `add_answer_headers`: they join the answer's headers as the server receives them,
instead of going through werkzeug's `Headers`, which checks each value on the way in and
copies every header again on the way out (about 9.5k instructions a header, where a
bare read's answer has two headers and the gateway's nine).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Request, Response

from veloz.web.context import RequestState, current_request, request_state

Before = Callable[[Request, RequestState], None]
After = Callable[[Request, RequestState, Response], None]
Teardown = Callable[[RequestState, BaseException | None], None]
_ANSWER_HEADERS = "veloz.answer_headers"  # the stated headers' list, in the request's environ


@dataclass
class RequestSteps:
    """The steps of an app's requests (`app.extensions["request_steps"]`), by phase, each list
    in the order its phase runs them."""

    before: list[Before] = field(default_factory=list)
    after: list[After] = field(default_factory=list)
    teardown: list[Teardown] = field(default_factory=list)


def add_request_step(app: Flask, *, before: Before | None = None, after: After | None = None,
                     teardown: Teardown | None = None) -> None:
    """One feature's steps: `before` runs after the steps added before it, `after` and
    `teardown` before theirs, as Flask orders the hooks of one app."""
    steps = _steps_of(app)
    if before is not None:
        steps.before.append(before)
    if after is not None:
        steps.after.insert(0, after)
    if teardown is not None:
        steps.teardown.insert(0, teardown)


def add_answer_headers(served: Request, *headers: tuple[str, str]) -> None:
    """Headers the answer to `served` will carry, whatever answers it (the view, an error,
    a refusal). Only for values the platform builds itself and knows to be one line of
    visible ASCII (ids, numbers): nothing checks them again."""
    served.environ[_ANSWER_HEADERS].extend(headers)


def _steps_of(app: Flask) -> RequestSteps:
    steps = app.extensions.get("request_steps")
    if steps is None:
        steps = app.extensions["request_steps"] = RequestSteps()
        _run_steps(app, steps)
        _state_answer_headers(app)
    return steps


def _state_answer_headers(app: Flask) -> None:
    """Around Flask's WSGI app: each request starts with no stated header, and its answer
    starts with the ones its steps stated, after Flask's own."""
    answer = app.wsgi_app

    def with_stated_headers(environ, start_response):
        stated: list[tuple[str, str]] = []
        environ[_ANSWER_HEADERS] = stated

        def start(status, headers, exc_info=None):
            headers.extend(stated)
            return start_response(status, headers, exc_info)

        return answer(environ, start)

    app.wsgi_app = with_stated_headers  # type: ignore[method-assign]


def _run_steps(app: Flask, steps: RequestSteps) -> None:
    """The three hooks that run the steps, registered when the first step is added, so the
    steps run before the hooks an app registers itself (and after them once it answers)."""

    @app.before_request
    def before_steps() -> None:
        served, state = current_request(), request_state()
        for step in steps.before:
            step(served, state)

    @app.after_request
    def after_steps(response: Response) -> Response:
        served, state = current_request(), request_state()
        for step in steps.after:
            step(served, state, response)
        return response

    @app.teardown_request
    def teardown_steps(error: BaseException | None) -> None:
        state = request_state()
        for step in steps.teardown:
            step(state, error)
