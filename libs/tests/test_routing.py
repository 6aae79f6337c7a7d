"""Every service routes a request as Flask itself would, though it binds its routing from the
request object (veloz.web.app.ServiceFlask.create_url_adapter) and keeps no sessions."""

import flask
import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException
from werkzeug.test import EnvironBuilder

from veloz.web.app import create_service_app

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PURGE")
HOSTS = ("127.0.0.1:5000", "localhost", "API.Example.com:443", "pedidos-service:5001", "")
SEGMENTS = st.one_of(
    st.sampled_from(["items", "orders", "reservations", "commit", "1", "42", "-1", "0",
                     "99999999999999999999", "Items", "..", ".", "", "metrics", "%2F", "é"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6))


def _app() -> Flask:
    routes = flask.Blueprint("routes", __name__)

    @routes.get("/items")
    def items():
        return []

    @routes.route("/items/<int:item_id>", methods=["GET", "PATCH", "DELETE"])
    def item(item_id: int):
        return {"id": item_id}

    @routes.post("/reservations/<int:reservation_id>/commit")
    def commit(reservation_id: int):
        return {"id": reservation_id}

    @routes.get("/")
    def root():
        return {}

    @routes.route("/<path:path>", methods=["PUT"])
    def anything(path: str):
        return {"path": path}

    return create_service_app(name="routing-probe", version="1", log_level="WARNING",
                              max_body_bytes=1024, blueprints=[routes], readiness=dict)


APP = _app()


def outcome(adapter) -> tuple:
    """What routing decided: the rule and its arguments, or the error and what it names."""
    try:
        rule, arguments = adapter.match(return_rule=True)
    except HTTPException as error:
        return (type(error).__name__, getattr(error, "valid_methods", None),
                getattr(error, "new_url", None))
    return rule.rule, arguments


def request_for(path: str, method: str, host: str, script_name: str) -> flask.Request:
    environ = EnvironBuilder(path="/", method=method).get_environ()
    environ.update(PATH_INFO=path.encode().decode("latin-1"), SCRIPT_NAME=script_name)
    if host:
        environ["HTTP_HOST"] = host
    else:
        environ.pop("HTTP_HOST", None)
    return APP.request_class(environ)


@settings(max_examples=400, deadline=None)
@given(segments=st.lists(SEGMENTS, max_size=5), trailing=st.booleans(),
       method=st.sampled_from(METHODS), host=st.sampled_from(HOSTS),
       script_name=st.sampled_from(["", "/api", "/api/"]))
def test_a_request_is_routed_as_flask_routes_it(segments, trailing, method, host, script_name):
    path = "/" + "/".join(segments) + ("/" if trailing else "")
    request = request_for(path, method, host, script_name)

    ours = outcome(APP.create_url_adapter(request))
    flasks = outcome(Flask.create_url_adapter(APP, request_for(path, method, host, script_name)))

    assert ours == flasks


def test_a_configured_server_name_is_routed_by_flask_itself():
    app = _app()
    app.config["SERVER_NAME"] = "pedidos.example.com"
    request = app.request_class(EnvironBuilder(path="/items/7", base_url="http://other.host/")
                                .get_environ())

    adapter = app.create_url_adapter(request)

    assert adapter.server_name == "pedidos.example.com"
    assert outcome(adapter) == ("/items/<int:item_id>", {"item_id": 7})


def test_no_request_keeps_a_session():
    app = _app()

    @app.get("/remember")
    def remember():
        flask.session["seen"] = True
        return {}

    with app.test_request_context("/items"):
        assert app.session_interface.is_null_session(flask.session)
        with pytest.raises(RuntimeError, match="secret key"):
            flask.session["seen"] = True
    assert app.test_client().get("/remember").status_code == 500
    assert app.test_client().get("/items").headers.get("Set-Cookie") is None


def test_a_host_flask_would_refuse_is_not_read():
    """No app reads the Host header, so one werkzeug cannot encode (an empty IDNA label) is
    answered like any other, where stock Flask answers 400."""
    response = APP.test_client().get("/items/7", headers={"Host": "bad..host"})

    assert response.status_code == 200
    assert flask.Flask("stock").test_client().get(
        "/", headers={"Host": "bad..host"}).status_code == 400
