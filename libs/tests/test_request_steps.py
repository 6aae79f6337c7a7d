"""Request steps (veloz.web.steps) run in the order Flask runs request hooks."""

import flask
from werkzeug.exceptions import Forbidden

from veloz.web.steps import add_answer_headers, add_request_step


def _app_with_steps(ran: list[str]) -> flask.Flask:
    app = flask.Flask("steps-probe")

    for name in ("first", "second"):
        add_request_step(
            app,
            before=lambda served, state, name=name: ran.append(f"before {name}"),
            after=lambda served, state, response, name=name: ran.append(f"after {name}"),
            teardown=lambda state, error, name=name: ran.append(f"teardown {name}"))

    @app.before_request
    def own_before():
        ran.append("own before")
        if flask.request.path == "/refused":
            raise Forbidden()

    @app.after_request
    def own_after(response):
        ran.append("own after")
        return response

    @app.teardown_request
    def own_teardown(error):
        ran.append("own teardown")

    @app.get("/ok")
    def ok():
        ran.append("view")
        return {}

    return app


def test_steps_run_in_flasks_order_around_the_apps_own_hooks():
    ran: list[str] = []

    assert _app_with_steps(ran).test_client().get("/ok").status_code == 200

    assert ran == ["before first", "before second", "own before", "view", "own after",
                   "after second", "after first", "own teardown", "teardown second",
                   "teardown first"]


def test_a_before_that_raises_answers_and_every_after_and_teardown_still_runs():
    ran: list[str] = []

    assert _app_with_steps(ran).test_client().get("/refused").status_code == 403

    assert "view" not in ran
    assert ran[-6:] == ["own after", "after second", "after first", "own teardown",
                        "teardown second", "teardown first"]


def test_a_step_sees_the_request_and_g():
    app = flask.Flask("steps-state")
    seen = {}
    add_request_step(app, before=lambda served, state: setattr(state, "path", served.path),
                     after=lambda served, state, response: seen.update(path=state.path))
    app.add_url_rule("/here", "here", lambda: {})

    app.test_client().get("/here")

    assert seen == {"path": "/here"}


def _app_stating(header: tuple[str, str]) -> flask.Flask:
    app = flask.Flask("stated-headers-probe")
    add_request_step(app, before=lambda served, state: add_answer_headers(served, header))

    @app.before_request
    def refuse():
        if flask.request.path == "/refused":
            raise Forbidden()

    @app.get("/ok")
    def ok():
        return {}, 200, {"X-View": "its own"}

    @app.get("/broken")
    def broken():
        raise RuntimeError("an error no handler takes")

    return app


def test_a_stated_header_is_on_every_answer_once_beside_the_views_own():
    client = _app_stating(("X-Stated", "7")).test_client()

    answers = {path: client.get(path) for path in ("/ok", "/refused", "/nowhere", "/broken")}

    assert {path: answer.status_code for path, answer in answers.items()} == {
        "/ok": 200, "/refused": 403, "/nowhere": 404, "/broken": 500}
    for answer in answers.values():
        assert answer.headers.getlist("X-Stated") == ["7"]
    assert answers["/ok"].headers["X-View"] == "its own"
    assert client.get("/ok").headers.getlist("X-Stated") == ["7"]  # not one per request so far
