"""JSON on the wire: money stays Decimal both ways, timestamps are ISO 8601 with timezone.

Encoding is orjson's (a tenth of simplejson's cost per answer, bench/README.md); a Decimal
goes out as the number it holds, digit for digit. Decoding keeps simplejson's
`use_decimal`: orjson would read money as binary floats. Flask speaks it through
veloz.web.codec."""

from decimal import Decimal

import orjson
import simplejson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def _encode_other(value):
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} has no JSON number")
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_bytes(value) -> bytes:
    """`value` as compact UTF-8 JSON: Decimals exact, datetimes and dates in ISO 8601."""
    return orjson.dumps(value, default=_encode_other, option=_OPTIONS)


def parse_json(data: bytes | str):
    """JSON text back into Python, every non-integer number a Decimal."""
    return simplejson.loads(data, use_decimal=True)


def wire_decimal(value: Decimal) -> Decimal:
    """Shortest exact form: Decimal('59.90') -> 59.9, Decimal('100.00') -> 100."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent  # a letter for NaN and infinities
    if isinstance(exponent, int) and exponent > 0:
        return normalized.quantize(Decimal(1))
    return normalized
