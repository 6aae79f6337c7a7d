"""Bearer JWT verification and the access table of the HTTP contract."""

import re
import threading
import time
from dataclasses import dataclass

import jwt
from flask import current_app
from jwt import PyJWK

from gateway.config import JwtSettings
from gateway.jwks import ProviderKeys, UnknownSigningKey
from veloz.core import errors
from veloz.core.errors import Problem
from veloz.core.identity import KNOWN_ROLES, valid_subject
from veloz.web.context import current_request, environ_key, request_state

ADMIN, CUSTOMER = "admin", "customer"
ANYONE: frozenset[str] = frozenset()
SIGNED_IN = frozenset({ADMIN, CUSTOMER})
ADMIN_ONLY = frozenset({ADMIN})
_AUTHORIZATION = environ_key("Authorization")  # absent on most reads

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
    """Verifies bearer tokens (issuer, audience, exp, iat and sub required, a bounded lifetime)
    and, with a shared secret, mints them.

    With JWT_JWKS_URL a token must be signed (RS256 or ES256) by one of the identity provider's
    published keys, named by its `kid`; HMAC tokens are then refused whatever their key, so
    neither a leaked shared secret nor the provider's public key used as an HMAC key can sign
    one. Without it, HS256 with JWT_SECRET (`make up`, the tests).

    A client sends the same token on every call until it expires, so the identity of a token
    that verified is remembered (at most `remembered` tokens, the oldest forgotten first) and
    answered again while its `exp` lies ahead and its key is still published; nothing else
    about a signed token can change.
    """

    algorithm = "HS256"
    provider_algorithms = ("RS256", "ES256")

    def __init__(self, settings: JwtSettings, remembered: int = 10_000):
        secret = settings.jwt_secret
        self._key = secret.get_secret_value() if secret is not None else None
        self.issuer, self.audience = settings.jwt_issuer, settings.jwt_audience
        self._roles_path = settings.jwt_roles_claim
        self._max_lifetime = settings.jwt_max_lifetime_seconds
        self._provider = None if settings.jwt_jwks_url is None else ProviderKeys(
            settings.jwt_jwks_url, refresh_seconds=settings.jwt_jwks_refresh_seconds,
            min_fetch_interval_seconds=settings.jwt_jwks_min_fetch_interval_seconds,
            timeout_seconds=settings.jwt_jwks_timeout_seconds)
        self._verified: dict[str, tuple[Identity, float, str | None]] = {}
        self._remembered = remembered
        self._remembering = threading.Lock()

    def verify(self, token: str) -> Identity:
        known = self._verified.get(token)
        if known is not None and time.time() < known[1] and self._still_signed_for(known[2]):
            return known[0]
        identity, expires, kid = self._decode(token)
        with self._remembering:
            if len(self._verified) >= self._remembered:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = identity, expires, kid
        return identity

    def _still_signed_for(self, kid: str | None) -> bool:
        return self._provider is None or (kid is not None and self._provider.is_published(kid))

    def _decode(self, token: str) -> tuple[Identity, float, str | None]:
        key, algorithms, kid = self._verification_key(token)
        try:
            claims = jwt.decode(token, key, algorithms=algorithms,
                                issuer=self.issuer, audience=self.audience,
                                options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from None
        if not valid_subject(claims["sub"]):
            raise InvalidToken("The sub claim must name a user: 1 to 255 printable characters "
                               "without surrounding spaces.")
        self._check_lifetime(claims)
        roles = _roles(claim_at(claims, self._roles_path))
        return Identity(claims["sub"], roles), float(claims["exp"]), kid

    def _verification_key(self, token: str) -> tuple[PyJWK | str, list[str], str | None]:
        """The key and algorithms to verify with; with a provider, the key its `kid` names."""
        if self._provider is None:
            assert self._key is not None  # JwtSettings requires one of the two
            return self._key, [self.algorithm], None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from None
        if header.get("alg") not in self.provider_algorithms:
            raise InvalidToken("it must be signed by the identity provider "
                               f"({' or '.join(self.provider_algorithms)})")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("its header names no signing key (kid)")
        try:
            return self._provider.key_for(kid), list(self.provider_algorithms), kid
        except UnknownSigningKey as error:
            raise InvalidToken(str(error)) from None

    def _check_lifetime(self, claims: dict) -> None:
        lifetime = float(claims["exp"]) - float(claims["iat"])  # both checked numeric by PyJWT
        if lifetime > self._max_lifetime:
            raise InvalidToken(f"it is valid for {lifetime:.0f} seconds, longer than the "
                               f"{self._max_lifetime} seconds allowed")

    def mint(self, subject: str, roles: list[str], ttl_seconds: int = 3600) -> str:
        if self._key is None:
            raise ValueError("Minting needs JWT_SECRET; with JWT_JWKS_URL the identity "
                             "provider issues the tokens.")
        now = int(time.time())
        claims = {"sub": subject, "roles": roles, "iss": self.issuer, "aud": self.audience,
                  "iat": now, "exp": now + ttl_seconds}
        return jwt.encode(claims, self._key, algorithm=self.algorithm)


def claim_at(claims: dict, path: str):
    """The claim at `path`: a claim of exactly that name first (so `cognito:groups` and Auth0's
    `https://example.com/roles` are single names), else the dotted path (`realm_access.roles`)."""
    if path in claims:
        return claims[path]
    value = claims
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    return value


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


def bearer_token_of(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header's value, else None."""
    scheme, _, token = (authorization or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def identify(authority: TokenAuthority,
             authorization: str | None) -> tuple[Identity | None, str | None]:
    """(the caller's identity, why its token is not valid) from an Authorization header's
    value: (None, None) without a bearer token."""
    token = bearer_token_of(authorization)
    if token is None:
        return None, None
    try:
        return authority.verify(token), None
    except InvalidToken as error:
        return None, str(error)


def caller() -> Identity | None:
    """The identity of a valid bearer token on this request (decoded once), else None."""
    state = request_state()
    if "caller" not in state:
        state.caller, state.token_error = identify(current_app.extensions["token_authority"],
                                                   current_request().environ.get(_AUTHORIZATION))
    return state.caller


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
    token_error = request_state().token_error
    if token_error:
        return f"The bearer token is not valid: {token_error}."
    if current_request().headers.get("Authorization"):
        return "Use the Authorization scheme Bearer."
    return "This call needs a bearer token (Authorization: Bearer <token>)."
