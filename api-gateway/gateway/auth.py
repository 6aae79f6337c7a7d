"""Bearer JWT verification and the access table of the HTTP contract."""

import re
import threading
import time
from dataclasses import dataclass

import jwt
from flask import current_app, g, request

from gateway.config import JwtSettings
from veloz import errors
from veloz.errors import Problem
from veloz.identity import KNOWN_ROLES, valid_subject

ADMIN, CUSTOMER = "admin", "customer"
ANYONE: frozenset[str] = frozenset()
SIGNED_IN = frozenset({ADMIN, CUSTOMER})
ADMIN_ONLY = frozenset({ADMIN})

# (methods, path pattern, roles allowed); first match wins, anything unlisted is admin only.
ACCESS_TABLE = (
    ({"GET", "HEAD"}, re.compile(r"/items(/[^/]+)?"), ANYONE),
    ({"POST"}, re.compile(r"/orders"), SIGNED_IN),
    ({"GET", "HEAD"}, re.compile(r"/orders(/[^/]+(/events)?)?"), SIGNED_IN),
    ({"POST"}, re.compile(r"/orders/[^/]+/cancel"), SIGNED_IN),
)


class Unauthorized(errors.Unauthorized):
    def __init__(self, detail: str):
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="pedidos-veloz"'})


class Forbidden(Problem):
    status, title, slug = 403, "Forbidden", "forbidden"


class InvalidToken(Exception):
    """The token is malformed, expired, badly signed, or lacks a claim we rely on."""


@dataclass(frozen=True)
class Identity:
    subject: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles


class TokenAuthority:
    """Verifies bearer tokens (HS256, issuer, audience, exp and sub required) and mints them.

    A client sends the same token on every call until it expires, so the identity of a token
    that verified is remembered (at most `remembered` tokens, the oldest forgotten first) and
    answered again while its `exp` lies ahead; nothing else about a signed token can change.
    """

    algorithm = "HS256"

    def __init__(self, settings: JwtSettings, remembered: int = 10_000):
        self._key = settings.jwt_secret.get_secret_value()
        self.issuer, self.audience = settings.jwt_issuer, settings.jwt_audience
        self._verified: dict[str, tuple[Identity, float]] = {}
        self._remembered = remembered
        self._remembering = threading.Lock()

    def verify(self, token: str) -> Identity:
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        identity, expires = self._decode(token)
        with self._remembering:
            if len(self._verified) >= self._remembered:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = identity, expires
        return identity

    def _decode(self, token: str) -> tuple[Identity, float]:
        try:
            claims = jwt.decode(token, self._key, algorithms=[self.algorithm],
                                issuer=self.issuer, audience=self.audience,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from None
        if not valid_subject(claims["sub"]):
            raise InvalidToken("The sub claim must name a user: 1 to 255 printable characters "
                               "without surrounding spaces.")
        return Identity(claims["sub"], _roles(claims.get("roles"))), float(claims["exp"])

    def mint(self, subject: str, roles: list[str], ttl_seconds: int = 3600) -> str:
        now = int(time.time())
        claims = {"sub": subject, "roles": roles, "iss": self.issuer, "aud": self.audience,
                  "iat": now, "exp": now + ttl_seconds}
        return jwt.encode(claims, self._key, algorithm=self.algorithm)


def _roles(claim) -> frozenset[str]:
    if not isinstance(claim, list) or not all(isinstance(role, str) for role in claim):
        raise InvalidToken("The token carries no list of roles.")
    roles = KNOWN_ROLES.intersection(claim)
    if not roles:
        raise InvalidToken("The token carries none of the roles admin or customer.")
    return frozenset(roles)


def roles_allowed(method: str, path: str) -> frozenset[str]:
    """Who may call `method path`: ANYONE (public), SIGNED_IN or ADMIN_ONLY."""
    for methods, pattern, roles in ACCESS_TABLE:
        if method in methods and pattern.fullmatch(path):
            return roles
    return ADMIN_ONLY


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def caller() -> Identity | None:
    """The identity of a valid bearer token on this request (decoded once), else None."""
    if "caller" not in g:
        g.caller, g.token_error = None, None
        token = bearer_token()
        try:
            g.caller = current_app.extensions["token_authority"].verify(token) if token else None
        except InvalidToken as error:
            g.token_error = str(error)
    return g.caller


def authorize(method: str, path: str) -> Identity | None:
    """The caller allowed to make this call, or a 401/403 problem."""
    allowed, identity = roles_allowed(method, path), caller()
    if allowed is ANYONE:
        return identity
    if identity is None:
        raise Unauthorized(_why_unauthenticated())
    if not allowed & identity.roles:
        raise Forbidden(f"This call needs the role {' or '.join(sorted(allowed))}.")
    return identity


def _why_unauthenticated() -> str:
    if g.token_error:
        return f"The bearer token is not valid: {g.token_error}."
    if request.headers.get("Authorization"):
        return "Use the Authorization scheme Bearer."
    return "This call needs a bearer token (Authorization: Bearer <token>)."
