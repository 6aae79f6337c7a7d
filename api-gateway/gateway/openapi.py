"""The platform's OpenAPI document: the gateway's own routes plus every service's routed paths."""

import copy
import time
from collections.abc import Callable

from flask import Flask

from gateway.auth import ANYONE, roles_allowed
from gateway.backends import Backend, ask_all, owner_of
from veloz.api import OpenApiDocument

BEARER_AUTH = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
SCHEMA_REF = "#/components/schemas/"


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
        _mark_secured(platform["paths"])
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


def _mark_secured(paths: dict) -> None:
    """Operations the access table closes to anonymous callers ask for a bearer token."""
    routed = {path: operations for path, operations in paths.items() if owner_of(path)}
    for path, operations in routed.items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and roles_allowed(method.upper(), path) is not ANYONE:
                operation["security"] = [{"bearerAuth": []}]
