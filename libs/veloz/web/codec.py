"""Flask's JSON in and out is the wire codec of veloz.core.codec: Decimals exact both ways."""

from flask.json.provider import JSONProvider

from veloz.core.codec import json_bytes, parse_json


class DecimalJSONProvider(JSONProvider):
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
