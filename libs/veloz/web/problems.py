"""RFC 9457 problem details: the one handler that turns any failure into a problem response."""

import logging
from typing import Any, cast

import psycopg
from flask import Flask, Response, current_app, request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from veloz.core.errors import Problem, ServiceUnavailable
from veloz.telemetry.logs import request_id_var

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str
    message: str


class ProblemDetails(BaseModel):
    """The body of every error response (RFC 9457). Extension members a problem may carry
    besides the ones named here are allowed."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="`urn:pedidos-veloz:problem:<slug>`, or `about:blank`")
    title: str
    status: int = Field(ge=100, le=599)
    detail: str | None = None
    instance: str | None = Field(default=None, description="The path that was called")
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="`{field, message}` per invalid field; for stock too short, "
        "`{item_id, requested, available}` per short item")
    order: dict[str, Any] | None = Field(
        default=None, description="POST /orders: the order as the outcome left it")
    payment: dict[str, Any] | None = Field(
        default=None, description="The payment the outcome concerns (declined, or standing "
        "in the way of this charge)")
    available: int | None = Field(
        default=None, description="PATCH /items/{id}/reserve: units that could be held")


def problem_response(problem: Problem) -> Response:
    body = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.path,
        "request_id": request_id_var.get(),
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    body.update(problem.extensions)
    response = cast(Response, current_app.json.response(body))
    response.status_code = problem.status
    response.content_type = PROBLEM_MEDIA_TYPE
    response.headers.update(problem.headers)
    return response


def _from_http_exception(error: HTTPException) -> Response:
    problem = Problem(error.description)
    problem.status, problem.title = error.code or 500, error.name
    # Keep headers such as Allow (405) or Retry-After (429) that the exception carries.
    problem.headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return problem_response(problem)


def _from_database_outage(error: Exception) -> Response:
    log.error("database unavailable", extra={"error_type": type(error).__name__})
    return problem_response(
        ServiceUnavailable("The database is unavailable; try again shortly.",
                           headers={"Retry-After": "2"})
    )


def _from_unexpected(error: Exception) -> Response:
    log.exception("unhandled error")
    return problem_response(
        Problem("An unexpected error occurred; quote the request_id when reporting it.")
    )


def _from_db_error(error: DBAPIError) -> Response:
    if error.connection_invalidated or _is_connection_error(error):
        return _from_database_outage(error)
    return _from_unexpected(error)


def _is_connection_error(error: DBAPIError) -> bool:
    """The database is away, or did not answer in time: a statement cancelled at its timeout
    (QueryCanceled, a kind of OperationalError) is what a frozen database looks like."""
    return isinstance(error.orig, psycopg.OperationalError | psycopg.InterfaceError)


def register_problem_handlers(app: Flask) -> None:
    app.register_error_handler(Problem, problem_response)
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(PoolTimeoutError, _from_database_outage)
    app.register_error_handler(DBAPIError, _from_db_error)
    app.register_error_handler(Exception, _from_unexpected)
