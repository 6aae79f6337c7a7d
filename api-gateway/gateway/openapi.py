"""The platform's OpenAPI document: the gateway's own routes plus every service's routed paths,
with what the gateway itself answers on them (401/403 by its access table, 429, 503/504)."""

import copy
import time
from collections.abc import Callable

from flask import Flask

from gateway.auth import ANYONE, roles_allowed
from gateway.backends import Backend, ask_all, owner_of
from gateway.ratelimit import UNLIMITED_PATHS
from veloz.core.identity import KNOWN_ROLES, ROLES_HEADER, USER_ID_HEADER
from veloz.web.api import OpenApiDocument, problem_answer

BEARER_AUTH = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
SCHEMA_REF = "#/components/schemas/"
# The gateway asserts who calls from the token; a client's copies of these are dropped.
ASSERTED_HEADERS = frozenset({USER_ID_HEADER.lower(), ROLES_HEADER.lower()})
UNAUTHENTICATED = ("No bearer token, or one that is malformed, expired, badly signed, or "
                   "whose `sub` is empty, blank or not printable ASCII.")
RATE_LIMIT_HEADERS = {
    f"{prefix}-{name}": {"description": description, "schema": {"type": "integer"}}
    for prefix in ("RateLimit", "X-RateLimit")
    for name, description in (("Limit", "Requests allowed per window"),
                              ("Remaining", "Requests left in this window"),
                              ("Reset", "When the window ends (RateLimit-: seconds from now; "
                                        "X-RateLimit-: Unix time)"))}


class PlatformDocument(OpenApiDocument):
    """Fetched from the services lazily and kept for `cache_seconds`; a service that is down
    is simply missing until a later rebuild finds it."""

    def __init__(self, title: str, version: str, description: str, *,
                 backends: dict[str, Backend], cache_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(title, version, description)
        self._backends, self._cache_seconds, self._clock = backends, cache_seconds, clock
        self._merged: dict | None = None
        self._merged_at = 0.0

    def document(self, app: Flask) -> dict:
        # Two threads may rebuild at once; both produce the same document, so no lock.
        if self._merged is None or self._clock() - self._merged_at >= self._cache_seconds:
            self._merged, self._merged_at = self._merge(app), self._clock()
        return self._merged

    def _merge(self, app: Flask) -> dict:
        platform = copy.deepcopy(super().document(app))
        for name, document in ask_all(self._backends, Backend.openapi).items():
            if document is not None:
                _absorb(platform, document, name)
        platform["components"]["securitySchemes"] = {"bearerAuth": BEARER_AUTH}
        for path, operations in platform["paths"].items():
            for method, operation in operations.items():
                _answer_as_gateway(path, method.upper(), operation)
        return platform


def _absorb(platform: dict, document: dict, backend: str) -> None:
    """Add the paths the gateway routes to `backend` and the schemas they use; a schema
    name another service already uses for a different schema gets the service's prefix."""
    ours = platform["components"]["schemas"]
    theirs = document.get("components", {}).get("schemas", {})
    renames = {name: f"{backend}_{name}" for name, schema in theirs.items()
               if ours.get(name, schema) != schema}
    document = _refs_renamed(document, renames)
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        ours[renames.get(name, name)] = schema
    platform["paths"].update((path, operations) for path, operations
                             in document.get("paths", {}).items() if owner_of(path) == backend)


def _refs_renamed(node, renames: dict[str, str]):
    if not renames:
        return node
    if isinstance(node, list):
        return [_refs_renamed(item, renames) for item in node]
    if not isinstance(node, dict):
        return node
    return {key: _ref_renamed(value, renames) if key == "$ref" else _refs_renamed(value, renames)
            for key, value in node.items()}


def _ref_renamed(ref: str, renames: dict[str, str]) -> str:
    name = ref.removeprefix(SCHEMA_REF)
    return SCHEMA_REF + renames[name] if ref.startswith(SCHEMA_REF) and name in renames else ref


def _answer_as_gateway(path: str, method: str, operation: dict) -> None:
    responses = operation["responses"]
    if path not in UNLIMITED_PATHS:
        responses["429"] = {**problem_answer(429, "Over this caller's rate limit (admins have "
                                                  "none); retry after Retry-After seconds."),
                            "headers": {**problem_answer(429)["headers"], **RATE_LIMIT_HEADERS}}
    if owner_of(path):
        _answer_for_backend(path, method, operation)
    operation["responses"] = dict(sorted(responses.items()))


def _answer_for_backend(path: str, method: str, operation: dict) -> None:
    """A routed operation: the gateway's access rule replaces the service's own identity
    checks, and a backend that is down or slow is answered by the gateway."""
    responses, allowed = operation["responses"], roles_allowed(method, path)
    operation["parameters"] = [parameter for parameter in operation.get("parameters", [])
                               if parameter["name"].lower() not in ASSERTED_HEADERS]
    responses.pop("401", None)  # a service's 401 is for identity headers only we can send
    if allowed is not ANYONE:
        operation["security"] = [{"bearerAuth": []}]
        responses["401"] = {**problem_answer(401, UNAUTHENTICATED), "headers": {
            "WWW-Authenticate": {"description": "`Bearer realm=\"pedidos-veloz\"`",
                                 "schema": {"type": "string"}}}}
        if KNOWN_ROLES - allowed:
            responses["403"] = problem_answer(
                403, f"The token lacks the role {' or '.join(sorted(allowed))}.")
    _also(responses, 503, "The service is unreachable, or its circuit breaker is open.")
    _also(responses, 504, "The service did not answer within the gateway's timeout.")


def _also(responses: dict, status: int, why: str) -> None:
    if str(status) in responses:
        responses[str(status)]["description"] += f" Or, from the gateway: {why}"
    else:
        responses[str(status)] = problem_answer(status, why)
