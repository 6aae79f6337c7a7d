"""Request validation and the OpenAPI document, both driven by the same pydantic schemas."""

import functools
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib.resources import files

from flask import Blueprint, Flask, Response, current_app, request, send_from_directory
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.json_schema import models_json_schema

from veloz.errors import BadRequest, Unprocessable, UnsupportedMediaType
from veloz.fields import MAX_ID
from veloz.problems import ProblemDetails

_RULE_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
_PARAM_SCHEMAS = {"int": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                  "string": {"type": "string"}}


@dataclass(frozen=True)
class Operation:
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, object] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


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
    response = current_app.json.response(_to_wire(payload))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def operation(summary: str, *, body=None, query=None, responses=None, tags=()):
    """Validate `body`/`query` into keyword arguments and document the route in OpenAPI."""
    spec = Operation(summary, body, query, responses or {}, tuple(tags))

    def decorate(view):
        @functools.wraps(view)
        def validated(*args, **kwargs):
            if spec.query is not None:
                kwargs["query"] = parse_query(spec.query)
            if spec.body is not None:
                kwargs["body"] = parse_body(spec.body)
            return view(*args, **kwargs)

        validated.operation = spec
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
            (rule, app.view_functions[rule.endpoint].operation)
            for rule in app.url_map.iter_rules()
            if hasattr(app.view_functions[rule.endpoint], "operation")
        ]
        schemas = _component_schemas(op for _, op in documented)
        paths: dict[str, dict] = {}
        for rule, op in sorted(documented, key=lambda pair: pair[0].rule):
            path, parameters = _openapi_path(rule.rule)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                paths.setdefault(path, {})[method.lower()] = _operation_object(op, parameters)
        return {"openapi": "3.1.0", "info": self.info, "paths": paths,
                "components": {"schemas": schemas}}


def _models_of(operations) -> set[type[BaseModel]]:
    models = {ProblemDetails}
    for op in operations:
        models.update(m for m in (op.body, op.query) if m is not None)
        models.update(_response_model(schema) for schema in op.responses.values())
    models.discard(None)
    return models


def _response_model(schema):
    if isinstance(schema, list):
        return schema[0]
    return schema


def _component_schemas(operations) -> dict:
    models = sorted(_models_of(list(operations)), key=lambda m: m.__name__)
    inputs = [(m, "validation") for m in models]
    _, top = models_json_schema(inputs, ref_template="#/components/schemas/{model}")
    return top.get("$defs", {})


def _ref(model) -> dict:
    if isinstance(model, list):
        return {"type": "array", "items": _ref(model[0])}
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _openapi_path(rule: str) -> tuple[str, list[dict]]:
    parameters = [
        {"name": m["name"], "in": "path", "required": True,
         "schema": _PARAM_SCHEMAS.get(m["converter"] or "string", {"type": "string"})}
        for m in _RULE_PARAM.finditer(rule)
    ]
    return _RULE_PARAM.sub(r"{\g<name>}", rule), parameters


def _query_parameters(model: type[BaseModel] | None) -> list[dict]:
    if model is None:
        return []
    schema = TypeAdapter(model).json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation_object(op: Operation, path_parameters: list[dict]) -> dict:
    problem = {"application/problem+json": {"schema": _ref(ProblemDetails)}}
    responses = {
        str(status): {"description": HTTPStatus(status).phrase,
                      "content": {"application/json": {"schema": _ref(model)}}
                      if status < 400 and model is not None else problem}
        for status, model in op.responses.items()
    }
    if op.body is not None:
        responses.setdefault("422", {"description": "Validation failed", "content": problem})
    result = {"summary": op.summary, "tags": list(op.tags), "responses": responses,
              "parameters": path_parameters + _query_parameters(op.query)}
    if op.body is not None:
        result["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": _ref(op.body)}}}
    return result


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
