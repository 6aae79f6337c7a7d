"""JSON on the wire: money stays Decimal both ways, timestamps are ISO 8601 with timezone."""

from datetime import date, datetime
from decimal import Decimal

import simplejson
from flask.json.provider import JSONProvider


def _encode_other(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def wire_decimal(value: Decimal) -> Decimal:
    """Shortest exact form: Decimal('59.90') -> 59.9, Decimal('100.00') -> 100."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent  # a letter for NaN and infinities
    if isinstance(exponent, int) and exponent > 0:
        return normalized.quantize(Decimal(1))
    return normalized


class DecimalJSONProvider(JSONProvider):
    def dumps(self, obj, **kwargs) -> str:
        return simplejson.dumps(obj, use_decimal=True, default=_encode_other,
                                ensure_ascii=False, **kwargs)

    def loads(self, s, **kwargs):
        return simplejson.loads(s, use_decimal=True, **kwargs)
