"""Per-caller rate limits: by token subject when signed in, by client address otherwise."""

import math
import time

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded

from gateway.auth import caller
from gateway.config import GatewaySettings
from veloz.errors import Problem
from veloz.problems import problem_response

UNLIMITED_PATHS = frozenset({"/health", "/livez", "/readyz", "/metrics", "/openapi.json"})


class TooManyRequests(Problem):
    status, title, slug = 429, "Too Many Requests", "rate-limited"


def install_rate_limits(app: Flask, settings: GatewaySettings) -> Limiter:
    """One budget per caller across all routes; over it -> 429 problem with Retry-After."""
    limiter = Limiter(
        key_func=caller_key, key_prefix="gateway",
        application_limits=[lambda: caller_limit(settings)],
        # Flask-Limiter's own headers would put Retry-After on every response; only 429 has it.
        storage_uri=settings.ratelimit_storage_uri, headers_enabled=False,
        # A storage outage must not take the gateway down: fall back to per-process counts.
        swallow_errors=True, in_memory_fallback_enabled=True,
    )
    limiter.request_filter(is_unlimited)
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, lambda error: _too_many(limiter, error))
    app.after_request(lambda response: _budget_headers(limiter, response))
    return limiter


def _budget_headers(limiter: Limiter, response: Response) -> Response:
    """Tell every limited caller its budget: the IETF draft's RateLimit-* (reset in seconds)
    and the customary X-RateLimit-* (reset as a Unix time)."""
    current = limiter.current_limit
    if current is None:
        return response
    reset_in = max(0, math.ceil(current.reset_at - time.time()))
    for prefix, reset in (("RateLimit", reset_in), ("X-RateLimit", math.ceil(current.reset_at))):
        response.headers[f"{prefix}-Limit"] = str(current.limit.amount)
        response.headers[f"{prefix}-Remaining"] = str(max(0, current.remaining))
        response.headers[f"{prefix}-Reset"] = str(reset)
    return response


def _too_many(limiter: Limiter, error: RateLimitExceeded) -> Response:
    current = limiter.current_limit
    wait = current.reset_at - time.time() if current else 1
    return problem_response(TooManyRequests(
        f"Rate limit of {error.limit.limit} exceeded; try again later.",
        headers={"Retry-After": str(max(1, math.ceil(wait)))}))


def caller_key() -> str:
    identity = caller()
    return f"sub:{identity.subject}" if identity else f"ip:{request.remote_addr}"


def caller_limit(settings: GatewaySettings) -> str:
    return settings.rate_limit_default if caller() else settings.rate_limit_anonymous


def is_unlimited() -> bool:
    if request.path in UNLIMITED_PATHS or request.path.startswith("/docs"):
        return True
    identity = caller()
    return identity is not None and identity.is_admin
