import time

import jwt
import pytest

from gateway.auth import (
    ADMIN_ONLY,
    ANYONE,
    SIGNED_IN,
    Identity,
    InvalidToken,
    TokenAuthority,
    roles_allowed,
)
from gateway.config import JwtSettings

SECRET = "unit-test-secret-unit-test-secret-0123456789"


@pytest.fixture
def authority():
    return TokenAuthority(JwtSettings(jwt_secret=SECRET))


def token(secret=SECRET, **changes):
    now = int(time.time())
    claims = {"sub": "user-1", "roles": ["customer"], "iss": "pedidos-veloz",
              "aud": "pedidos-veloz-api", "iat": now, "exp": now + 60, **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret,
                      algorithm="HS256")


def test_a_valid_token_names_the_subject_and_roles(authority):
    assert authority.verify(token(roles=["admin", "customer"])) == Identity(
        "user-1", frozenset({"admin", "customer"}))


def test_a_minted_token_is_accepted(authority):
    assert authority.verify(authority.mint("ops", ["admin"])).is_admin


def test_a_remembered_token_still_expires(authority):
    expires = int(time.time()) + 1
    expiring = token(exp=expires)
    assert authority.verify(expiring).subject == "user-1"  # verified, then remembered

    time.sleep(max(0.0, expires - time.time()) + 0.05)  # a second at most: the clock must pass

    with pytest.raises(InvalidToken):
        authority.verify(expiring)


def test_only_a_bounded_number_of_tokens_is_remembered():
    authority = TokenAuthority(JwtSettings(jwt_secret=SECRET), remembered=2)
    tokens = [token(sub=f"user-{n}") for n in range(3)]

    assert [authority.verify(t).subject for t in tokens] == ["user-0", "user-1", "user-2"]
    assert [authority.verify(t).subject for t in reversed(tokens)] == [
        "user-2", "user-1", "user-0"]
    assert len(authority._verified) == 2


@pytest.mark.parametrize("bad_token", [
    token(exp=int(time.time()) - 5),
    token(aud="another-api"),
    token(iss="someone-else"),
    token(secret="another-secret-another-secret-another-secret"),
    token(roles=None),
    token(roles="admin"),
    token(roles=["superuser"]),
    token(exp=None),
    token(sub=None),
    token(sub=""),
    token(sub=" "),
    token(sub="user-1\r\nX-User-Roles: admin"),
    token(sub=" user-1"),
    token(sub="x" * 256),
    token(sub="jos\u00e9"),
    jwt.encode({"sub": "x", "roles": ["admin"]}, None, algorithm="none"),
    "not-a-jwt",
], ids=["expired", "wrong audience", "wrong issuer", "wrong secret", "no roles",
        "roles not a list", "unknown role only", "no expiry", "no subject", "empty subject",
        "blank subject", "subject with CR/LF", "padded subject", "subject too long",
        "subject not ASCII", "alg none", "garbage"])
def test_a_token_that_is_not_ours_or_not_current_is_rejected(authority, bad_token):
    with pytest.raises(InvalidToken):
        authority.verify(bad_token)


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/items", ANYONE),
    ("GET", "/items/7", ANYONE),
    ("HEAD", "/items/7", ANYONE),
    ("POST", "/items", ADMIN_ONLY),
    ("PATCH", "/items/7", ADMIN_ONLY),
    ("DELETE", "/items/7", ADMIN_ONLY),
    ("POST", "/items/7/restock", ADMIN_ONLY),
    ("GET", "/items/7/anything", ADMIN_ONLY),
    ("POST", "/orders", SIGNED_IN),
    ("GET", "/orders/3", SIGNED_IN),
    ("GET", "/orders/3/events", SIGNED_IN),
    ("POST", "/orders/3/cancel", SIGNED_IN),
    ("GET", "/orders", SIGNED_IN),
    ("DELETE", "/orders/3", ADMIN_ONLY),
    ("GET", "/payments", ADMIN_ONLY),
    ("POST", "/payments/1/refund", ADMIN_ONLY),
    ("GET", "/reservations/1", ADMIN_ONLY),
    ("POST", "/reservations", ADMIN_ONLY),
])
def test_the_access_table_says_who_may_call_each_route(method, path, allowed):
    assert roles_allowed(method, path) == allowed
