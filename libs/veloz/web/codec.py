"""Flask's JSON in and out is the wire codec of veloz.core.codec: Decimals exact both ways."""

from flask import Response
from flask.json.provider import JSONProvider

from veloz.core.codec import json_bytes, parse_json

JSON_CONTENT_TYPE = "application/json"


class DecimalJSONProvider(JSONProvider):
    def response(self, *args, **kwargs) -> Response:
        """A view's dict or list as its answer: the bytes given to the response as they are,
        where Flask's own way turns them into text that the response encodes back."""
        return Response(json_bytes(self._prepare_response_obj(args, kwargs)),
                        content_type=JSON_CONTENT_TYPE)

    def dumps(self, obj, **kwargs) -> str:
        _no_options(kwargs)
        return json_bytes(obj).decode()

    def loads(self, s, **kwargs):
        _no_options(kwargs)
        return parse_json(s)


def _no_options(options: dict) -> None:
    """One JSON dialect on the wire: no caller picks another."""
    if options:
        raise TypeError(f"unsupported JSON options: {sorted(options)}")
