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
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Request, Response

from veloz.web.context import RequestState, current_request, request_state

Before = Callable[[Request, RequestState], None]
After = Callable[[Request, RequestState, Response], None]
Teardown = Callable[[RequestState, BaseException | None], None]


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


def _steps_of(app: Flask) -> RequestSteps:
    steps = app.extensions.get("request_steps")
    if steps is None:
        steps = app.extensions["request_steps"] = RequestSteps()
        _run_steps(app, steps)
    return steps


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
