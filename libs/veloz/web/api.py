"""Request validation and the OpenAPI document, both driven by the same pydantic schemas."""

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from importlib.resources import files
from typing import Literal
from weakref import WeakKeyDictionary

from flask import Blueprint, Flask, Response, current_app, request, send_from_directory
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from veloz.core.codec import json_bytes
from veloz.core.errors import BadRequest, Unprocessable, UnsupportedMediaType
from veloz.core.fields import MAX_ID
from veloz.data.idempotency import HEADER as IDEMPOTENCY_HEADER
from veloz.data.idempotency import MAX_KEY_LENGTH
from veloz.web.codec import JSON_CONTENT_TYPE
from veloz.web.problems import PROBLEM_MEDIA_TYPE, ProblemDetails

SCHEMA_REF = "#/components/schemas/"
JsonSchemaMode = Literal["validation", "serialization"]
PROBLEM_SCHEMA_REF = SCHEMA_REF + ProblemDetails.__name__
_RULE_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
_PARAM_SCHEMAS = {"int": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                  "string": {"type": "string"}}


@dataclass(frozen=True)
class HeaderParameter:
    """A request header an operation reads, as OpenAPI documents it."""

    name: str
    description: str
    schema: dict

    def openapi(self) -> dict:
        return {"name": self.name, "in": "header", "required": False,
                "description": self.description, "schema": self.schema}


IDEMPOTENCY_KEY = HeaderParameter(
    IDEMPOTENCY_HEADER, "Repeating a request with the same key and body replays the first "
    "answer (header Idempotent-Replayed: true) and does the work once; the same key with "
    "another body is a 422.", {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH})


@dataclass(frozen=True)
class Operation:
    """How a route validates and documents itself. `responses` maps a status to the model of
    its JSON body (`[Model]` for an array), to a sentence saying when a problem answer comes
    (or None), or, for 204, to None. Statuses every operation of its kind can answer (400,
    404, 413, 415, 422, 503) are added by the document."""

    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, object] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    headers: tuple[HeaderParameter, ...] = ()


# The operation of each decorated view, for the document to find.
_OPERATIONS: WeakKeyDictionary[Callable, Operation] = WeakKeyDictionary()


def field_path(location: tuple) -> str:
    """('items', 0, 'quantity') -> 'items[0].quantity'."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def field_errors(error: ValidationError) -> list[dict]:
    return [{"field": field_path(e["loc"]) or "body", "message": e["msg"]} for e in error.errors()]


def parse_body(model: type[BaseModel]):
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
    try:
        return model.model_validate_json(request.get_data(cache=True) or b"")
    except ValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise BadRequest("The request body is not valid JSON.") from None
        raise Unprocessable("The request body failed validation.",
                            errors=field_errors(error)) from None


def parse_query(model: type[BaseModel]):
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise Unprocessable("The query string failed validation.",
                            errors=field_errors(error)) from None


def _to_wire(payload):
    if isinstance(payload, BaseModel):
        return payload.model_dump(mode="python", exclude_none=False)
    if isinstance(payload, list):
        return [_to_wire(item) for item in payload]
    return payload


def respond(payload, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON answer; a 204 is sent with neither body nor Content-Type."""
    if status == HTTPStatus.NO_CONTENT:
        response = Response(status=status)
        del response.headers["Content-Type"]
    else:
        response = Response(json_bytes(_to_wire(payload)), status,
                            content_type=JSON_CONTENT_TYPE)
    if headers:
        response.headers.update(headers)
    return response


def operation(summary: str, *, body=None, query=None, responses=None, tags=(), headers=()):
    """Validate `body`/`query` into keyword arguments and document the route in OpenAPI."""
    spec = Operation(summary, body, query, responses or {}, tuple(tags), tuple(headers))

    def decorate(view):
        @functools.wraps(view)
        def validated(*args, **kwargs):
            if spec.query is not None:
                kwargs["query"] = parse_query(spec.query)
            if spec.body is not None:
                kwargs["body"] = parse_body(spec.body)
            return view(*args, **kwargs)

        _OPERATIONS[validated] = spec
        return validated

    return decorate


class OpenApiDocument:
    """Builds the OpenAPI 3.1 document from the app's routes on first request, then caches it."""

    def __init__(self, title: str, version: str, description: str = ""):
        self.info = {"title": title, "version": version, "description": description}
        self._document: dict | None = None

    def document(self, app: Flask) -> dict:
        if self._document is None:
            self._document = self._build(app)
        return self._document

    def _build(self, app: Flask) -> dict:
        documented = [
            (rule, _OPERATIONS[app.view_functions[rule.endpoint]])
            for rule in app.url_map.iter_rules()
            if app.view_functions[rule.endpoint] in _OPERATIONS
        ]
        schemas = _Schemas(op for _, op in documented)
        # Every route of a service with a database reads or writes it.
        outage = {503: "The database is unavailable; retry after Retry-After seconds."}
        always = outage if "database" in app.extensions else {}
        paths: dict[str, dict] = {}
        for rule, op in sorted(documented, key=lambda pair: pair[0].rule):
            path, parameters = _openapi_path(rule.rule)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                paths.setdefault(path, {})[method.lower()] = schemas.operation_object(
                    op, parameters, always)
        return {"openapi": "3.1.0", "info": self.info, "paths": paths,
                "components": {"schemas": schemas.components}}


class _WireSchema(GenerateJsonSchema):
    """JSON Schema of what travels: a Decimal is a JSON number (veloz.core.codec; Money refuses
    strings), and constraints pydantic leaves under its own names (`ge`, `decimal_places`
    on Money) become the JSON Schema keywords they mean."""

    def decimal_schema(self, schema) -> dict:
        json_schema = {"type": "number"}
        self.update_with_validations(json_schema, schema, self.ValidationsMapping.numeric)
        if "decimal_places" in schema:
            json_schema["multipleOf"] = 10.0 ** -schema["decimal_places"]
        return json_schema

    def encode_default(self, dft):
        return _json_number(dft) if isinstance(dft, Decimal) else super().encode_default(dft)

    def default_schema(self, schema) -> dict:
        # `= None` on a field that refuses null means "may be omitted", not "defaults to null".
        json_schema = super().default_schema(schema)
        if "default" in json_schema and json_schema["default"] is None and not _admits_null(
                json_schema):
            del json_schema["default"]
        return json_schema

    def generate_inner(self, schema) -> dict:
        json_schema = dict(super().generate_inner(schema))
        for name, keyword in self.ValidationsMapping.numeric.items():
            if name in json_schema and name != keyword:
                json_schema[keyword] = _json_number(json_schema.pop(name))
        if "decimal_places" in json_schema:
            json_schema["multipleOf"] = 10.0 ** -json_schema.pop("decimal_places")
        json_schema.pop("max_digits", None)
        return json_schema


def _admits_null(json_schema: dict) -> bool:
    return json_schema.get("type") == "null" or any(
        option.get("type") == "null" for option in json_schema.get("anyOf", []))


def _json_number(value) -> int | float:
    number = Decimal(value)
    return int(number) if number == number.to_integral_value() else float(number)


class _Schemas:
    """The component schemas of a set of operations: request bodies and query strings as they
    are validated, response bodies as they are serialized (so `items`, not an alias)."""

    def __init__(self, operations):
        operations = list(operations)
        inputs: set[tuple[type[BaseModel], JsonSchemaMode]] = {
            (m, "validation") for op in operations for m in (op.body, op.query) if m}
        outputs: set[tuple[type[BaseModel], JsonSchemaMode]] = {
            (_response_model(value), "serialization") for op in operations
            for value in op.responses.values() if _is_model(value)}
        outputs.add((ProblemDetails, "serialization"))
        ordered = sorted(inputs | outputs, key=lambda pair: (pair[0].__name__, pair[1]))
        refs, top = models_json_schema(ordered, ref_template=SCHEMA_REF + "{model}",
                                       schema_generator=_WireSchema)
        self.components = top.get("$defs", {})
        self._refs = refs
        queries = {op.query for op in operations if op.query is not None}
        self._queries = {query: self._resolve(query) for query in queries}
        for query in queries:  # a query string is documented as parameters, not a schema
            self.components.pop(self._refs[(query, "validation")]["$ref"].removeprefix(SCHEMA_REF))

    def _resolve(self, model) -> dict:
        return self.components[self._refs[(model, "validation")]["$ref"].removeprefix(SCHEMA_REF)]

    def ref(self, value, mode: JsonSchemaMode = "serialization") -> dict:
        if isinstance(value, list):
            return {"type": "array", "items": self.ref(value[0], mode)}
        return self._refs[(value, mode)]

    def operation_object(self, op: Operation, path_parameters: list[dict],
                         always: dict[int, str]) -> dict:
        statuses = {**_implied_statuses(op, path_parameters), **always, **op.responses}
        result = {"summary": op.summary, "tags": list(op.tags),
                  "parameters": path_parameters + self._query_parameters(op.query)
                  + [header.openapi() for header in op.headers],
                  "responses": {str(status): self._response_object(status, value)
                                for status, value in sorted(statuses.items())}}
        if op.body is not None:
            result["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": self.ref(op.body, "validation")}}}
        return result

    def _response_object(self, status: int, value) -> dict:
        if not _is_model(value):
            return (problem_answer(status, value) if status >= 400
                    else {"description": value or HTTPStatus(status).phrase})
        response = {"description": HTTPStatus(status).phrase,
                    "content": {"application/json": {"schema": self.ref(value)}}}
        headers = {**_RESPONSE_HEADERS.get(status, {}),
                   **(_PAGE_HEADERS if isinstance(value, list) else {})}
        return {**response, "headers": headers} if headers else response

    def _query_parameters(self, model) -> list[dict]:
        if model is None:
            return []
        schema = self._queries[model]
        required = set(schema.get("required", []))
        return [{"name": name, "in": "query", "required": name in required,
                 "schema": _without_null(prop)}
                for name, prop in schema.get("properties", {}).items()]


def problem_answer(status: int, description: str | None = None) -> dict:
    """The response object of a problem+json answer (with Retry-After where one is sent)."""
    response = {"description": description or HTTPStatus(status).phrase,
                "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}}
    if status in _RESPONSE_HEADERS:
        response["headers"] = _RESPONSE_HEADERS[status]
    return response


def _is_model(value) -> bool:
    model = _response_model(value)
    return isinstance(model, type) and issubclass(model, BaseModel)


def _response_model(value):
    return value[0] if isinstance(value, list) else value


def _implied_statuses(op: Operation, path_parameters: list[dict]) -> dict[int, str]:
    statuses: dict[int, str] = {}
    if path_parameters:
        statuses[404] = "Nothing has this id."
    if op.query is not None:
        statuses[422] = "The query string failed validation; `errors` names each parameter."
    if op.body is not None:
        statuses.update({
            400: "The body is not valid JSON.",
            413: "The body is larger than the service accepts (MAX_BODY_BYTES).",
            415: "The body was not sent as application/json.",
            422: "The body failed validation; `errors` names each field.",
        })
    return statuses


def _without_null(schema: dict) -> dict:
    """A query parameter is omitted, never null: `anyOf [T, null]` documents as T."""
    options = [option for option in schema.get("anyOf", []) if option != {"type": "null"}]
    if len(options) != 1:
        return schema
    rest = {key: value for key, value in schema.items()
            if key != "anyOf" and not (key == "default" and value is None)}
    return {**options[0], **rest}


def _header(description: str, schema: dict | None = None) -> dict:
    return {"description": description, "schema": schema or {"type": "string"}}


_RETRY_AFTER = {"Retry-After": _header("Seconds to wait before trying again",
                                       {"type": "integer", "minimum": 0})}
_RESPONSE_HEADERS = {
    201: {"Location": _header("Where the created resource can be read")},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
_PAGE_HEADERS = {"Link": _header('`<url>; rel="next"` while more rows follow (keyset paging)')}


def _openapi_path(rule: str) -> tuple[str, list[dict]]:
    parameters = [
        {"name": m["name"], "in": "path", "required": True,
         "schema": _PARAM_SCHEMAS.get(m["converter"] or "string", {"type": "string"})}
        for m in _RULE_PARAM.finditer(rule)
    ]
    return _RULE_PARAM.sub(r"{\g<name>}", rule), parameters


_SWAGGER_ASSETS = files("flask_openapi3_swagger") / "templates" / "swagger"
_SWAGGER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/docs/assets/css/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/js/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui"}});</script>
</body></html>"""


def docs_blueprint(document: OpenApiDocument) -> Blueprint:
    """`/openapi.json` and a Swagger UI at `/docs`, served from bundled assets (no CDN)."""
    blueprint = Blueprint("docs", __name__)

    @blueprint.get("/openapi.json")
    def openapi_json():
        return current_app.json.response(document.document(current_app))

    @blueprint.get("/docs")
    def swagger_ui():
        return Response(_SWAGGER_PAGE.format(title=document.info["title"]), mimetype="text/html")

    @blueprint.get("/docs/assets/<path:filename>")
    def swagger_assets(filename):
        return send_from_directory(str(_SWAGGER_ASSETS), filename, max_age=86400)

    return blueprint
