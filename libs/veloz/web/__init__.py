"""The Flask edge: the app factory, request validation and OpenAPI, problem answers, and the
Flask-facing halves of the layers below (JSON provider, request tracing, idempotent replay,
paging links)."""
