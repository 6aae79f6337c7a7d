"""Typed errors a client can act on. Pure Python, so domain code may raise them."""


class Problem(Exception):
    """A failure a client can act on. Subclasses fix status, title and type."""

    status = 500
    title = "Internal Server Error"
    slug = ""

    def __init__(self, detail: str | None = None, *, errors=None, headers=None, **extensions):
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extensions = extensions

    @property
    def type(self) -> str:
        return self.type_uri()

    @classmethod
    def type_uri(cls) -> str:
        return f"urn:pedidos-veloz:problem:{cls.slug}" if cls.slug else "about:blank"


class BadRequest(Problem):
    status, title, slug = 400, "Bad Request", "malformed-request"


class Unauthorized(Problem):
    status, title, slug = 401, "Unauthorized", "unauthorized"


class PaymentRequired(Problem):
    status, title, slug = 402, "Payment Required", "payment-declined"


class NotFound(Problem):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class UnsupportedMediaType(Problem):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class Unprocessable(Problem):
    status, title, slug = 422, "Unprocessable Content", "validation-failed"


class ServiceUnavailable(Problem):
    status, title, slug = 503, "Service Unavailable", "service-unavailable"


class GatewayTimeout(Problem):
    status, title, slug = 504, "Gateway Timeout", "upstream-timeout"
