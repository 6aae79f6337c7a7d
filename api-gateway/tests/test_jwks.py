"""Tokens from an identity provider: a JWKS served by the test itself on 127.0.0.1, with keys
made here, rotated, withdrawn, flooded with made-up key ids, and taken down."""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.auth import InvalidToken, TokenAuthority
from gateway.config import GatewaySettings, JwtSettings

ISSUER, AUDIENCE = "https://idp.test/realms/veloz", "pedidos-veloz-api"
SECRET = "a-shared-secret-that-is-long-enough-for-hs256-signing"
GATEWAY_SECRET = "a-test-only-secret-that-is-long-enough-for-hs256"  # conftest's settings_for


class SigningKey:
    """A provider's key pair: the private half signs tokens, the public half is published."""

    def __init__(self, kid: str, algorithm: str):
        self.kid, self.algorithm = kid, algorithm
        if algorithm == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk.update(kid=kid, use="sig", alg=algorithm)

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, kid: str | None = None, lifetime: int = 300, **claims) -> str:
        return jwt.encode(provider_claims(lifetime, **claims), self.private,
                          algorithm=self.algorithm, headers={"kid": kid or self.kid})


def provider_claims(lifetime: int = 300, **changes) -> dict:
    now = int(time.time())
    claims = {"sub": "3f1c-user", "iss": ISSUER, "aud": AUDIENCE, "iat": now,
              "exp": now + lifetime, "roles": ["customer"], **changes}
    return {name: value for name, value in claims.items() if value is not None}


class Provider:
    """An identity provider's JWKS endpoint on 127.0.0.1 that counts how often it is asked."""

    def __init__(self, *keys: SigningKey):
        self.keys, self.hits, self.delay = list(keys), 0, 0.0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                provider.hits += 1
                time.sleep(provider.delay)
                body = json.dumps({"keys": [key.jwk for key in provider.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        """The provider becomes unreachable: nothing listens on its port any more."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def rsa_key():
    return SigningKey("rsa-1", "RS256")


@pytest.fixture(scope="module")
def ec_key():
    return SigningKey("ec-1", "ES256")


@pytest.fixture
def provider(rsa_key, ec_key):
    started = Provider(rsa_key, ec_key)
    yield started
    started.stop()


def provider_settings(url: str, **overrides) -> JwtSettings:
    return JwtSettings(**{"jwt_jwks_url": url, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE,
                          "jwt_jwks_min_fetch_interval_seconds": 0.0, **overrides})


def authority_for(url: str, **overrides) -> TokenAuthority:
    return TokenAuthority(provider_settings(url, **overrides))


@pytest.fixture
def gateway_for(settings_for):
    def client(url: str, **overrides):
        from gateway.app import create_app

        settings = settings_for(jwt_jwks_url=url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE,
                                jwt_jwks_min_fetch_interval_seconds=0.0, **overrides)
        return create_app(settings).test_client()

    return client


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("key", ["rsa_key", "ec_key"])
def test_rs256_and_es256_tokens_signed_by_the_providers_keys_pass_the_gateway(
        gateway_for, provider, key, request):
    signing_key = request.getfixturevalue(key)
    response = gateway_for(provider.url).get("/orders", headers=bearer(signing_key.sign()))
    assert response.status_code == 200
    assert response.json["headers"]["X-User-Id"] == "3f1c-user"
    assert response.json["headers"]["X-User-Roles"] == "customer"


def test_a_key_published_while_the_gateway_runs_is_accepted_without_a_restart(
        provider, rsa_key):
    authority = authority_for(provider.url)
    assert authority.verify(rsa_key.sign()).subject == "3f1c-user"

    rotated = SigningKey("rsa-2", "RS256")
    provider.keys.append(rotated)

    assert authority.verify(rotated.sign(sub="after-rotation")).subject == "after-rotation"


def test_a_key_the_provider_withdraws_is_refused_after_the_next_refresh_even_if_remembered(
        provider, rsa_key):
    authority = authority_for(provider.url, jwt_jwks_refresh_seconds=0.2)
    withdrawn = SigningKey("rsa-old", "RS256")
    provider.keys.append(withdrawn)
    token = withdrawn.sign()
    assert authority.verify(token).subject == "3f1c-user"  # verified, then remembered

    provider.keys.remove(withdrawn)
    time.sleep(0.3)

    with pytest.raises(InvalidToken, match="not one the identity provider publishes"):
        authority.verify(token)
    assert authority.verify(rsa_key.sign()).subject == "3f1c-user"


def test_a_flood_of_made_up_key_ids_fetches_the_keys_at_most_once_per_interval(
        provider, rsa_key):
    authority = authority_for(provider.url, jwt_jwks_min_fetch_interval_seconds=1.0)
    authority.verify(rsa_key.sign())
    assert provider.hits == 1

    for n in range(200):
        with pytest.raises(InvalidToken):
            authority.verify(rsa_key.sign(kid=f"made-up-{n}"))
    assert provider.hits == 1, "inside the interval an unknown kid asks the provider nothing"

    time.sleep(1.05)
    for n in range(50):
        with pytest.raises(InvalidToken):
            authority.verify(rsa_key.sign(kid=f"made-up-again-{n}"))
    assert provider.hits == 2


def test_with_the_provider_down_cached_keys_still_verify_and_an_unknown_kid_is_a_clear_401(
        gateway_for, provider, rsa_key, ec_key):
    client = gateway_for(provider.url, jwt_jwks_refresh_seconds=0.1)
    assert client.get("/orders", headers=bearer(rsa_key.sign())).status_code == 200

    provider.stop()
    time.sleep(0.15)  # the keys are due for a refresh, which now fails

    assert client.get("/orders", headers=bearer(ec_key.sign(sub="fresh"))).status_code == 200
    unknown = client.get("/orders", headers=bearer(rsa_key.sign(kid="rsa-next")))
    assert unknown.status_code == 401
    assert unknown.content_type == "application/problem+json"
    assert "could not be reached" in unknown.json["detail"]


def test_a_provider_unreachable_from_the_start_gives_401_not_500(gateway_for, dead_url,
                                                                  rsa_key):
    response = gateway_for(dead_url + "/jwks").get("/orders", headers=bearer(rsa_key.sign()))
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert "could not be reached" in response.json["detail"]


def test_a_provider_that_does_not_answer_is_given_up_on_after_the_fetch_timeout(
        provider, rsa_key):
    provider.delay = 3.0
    authority = authority_for(provider.url, jwt_jwks_timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(InvalidToken, match="could not be reached"):
        authority.verify(rsa_key.sign())
    assert time.monotonic() - started < 1.5


def hs256_token(key: bytes, kid: str) -> str:
    """An HS256 token signed by hand: PyJWT itself refuses a PEM as an HMAC key."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(provider_claims(roles=["admin"])).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def test_with_a_jwks_a_token_signed_with_the_shared_secret_is_refused(gateway_for, provider,
                                                                     rsa_key):
    client = gateway_for(provider.url)  # JWT_SECRET is set too, and must not matter
    forged = hs256_token(GATEWAY_SECRET.encode(), rsa_key.kid)
    response = client.get("/payments", headers=bearer(forged))
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert "RS256 or ES256" in response.json["detail"]
    assert TokenAuthority(JwtSettings(jwt_secret=GATEWAY_SECRET, jwt_issuer=ISSUER,
                                      jwt_audience=AUDIENCE)).verify(forged).is_admin, \
        "the same token passes a gateway without a JWKS: it is the JWKS that refuses it"


@pytest.mark.parametrize("public_form", ["pem", "jwk"])
def test_with_a_jwks_the_providers_public_key_used_as_an_hmac_secret_signs_nothing(
        gateway_for, provider, rsa_key, public_form):
    public = rsa_key.public_pem() if public_form == "pem" else json.dumps(rsa_key.jwk).encode()
    response = gateway_for(provider.url).get("/payments",
                                             headers=bearer(hs256_token(public, rsa_key.kid)))
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize(("roles_claim", "claims"), [
    ("roles", {"roles": ["admin"]}),
    ("cognito:groups", {"roles": None, "cognito:groups": ["admin", "ops"]}),
    ("realm_access.roles",
     {"roles": None, "realm_access": {"roles": ["offline_access", "admin"]}}),
    ("https://pedidos-veloz.example/roles",
     {"roles": None, "https://pedidos-veloz.example/roles": ["admin"]}),
], ids=["plain", "cognito", "keycloak", "auth0 namespaced name with dots"])
def test_roles_are_read_from_the_configured_claim_path(provider, rsa_key, roles_claim, claims):
    authority = authority_for(provider.url, jwt_roles_claim=roles_claim)
    assert authority.verify(rsa_key.sign(**claims)).roles == {"admin"}


def test_roles_elsewhere_than_the_configured_path_do_not_count(provider, rsa_key):
    authority = authority_for(provider.url, jwt_roles_claim="realm_access.roles")
    with pytest.raises(InvalidToken, match="no list of roles"):
        authority.verify(rsa_key.sign(roles=["admin"]))


CENTURY = 100 * 365 * 86_400


def test_a_provider_token_valid_for_a_hundred_years_is_refused(provider, rsa_key):
    authority = authority_for(provider.url)
    with pytest.raises(InvalidToken, match="longer than the 86400 seconds allowed"):
        authority.verify(rsa_key.sign(lifetime=CENTURY))


def test_a_shared_secret_token_valid_for_a_hundred_years_is_refused():
    authority = TokenAuthority(JwtSettings(jwt_secret=SECRET))
    with pytest.raises(InvalidToken, match="longer than"):
        authority.verify(authority.mint("ops", ["admin"], ttl_seconds=CENTURY))
    assert authority.verify(authority.mint("ops", ["admin"], ttl_seconds=86_400)).is_admin


def test_a_token_without_iat_is_refused_since_its_lifetime_cannot_be_known():
    claims = {k: v for k, v in provider_claims(iss="pedidos-veloz").items() if k != "iat"}
    token = jwt.encode({**claims, "aud": "pedidos-veloz-api"}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match="iat"):
        TokenAuthority(JwtSettings(jwt_secret=SECRET)).verify(token)


def test_jwt_secret_is_needed_only_when_no_jwks_url_is_set(monkeypatch):
    for name, value in {"ESTOQUE_URL": "http://e:1", "PEDIDOS_URL": "http://p:1",
                        "PAGAMENTOS_URL": "http://g:1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.setenv("JWT_JWKS_URL", "https://idp.example/.well-known/jwks.json")
    assert GatewaySettings.from_env().jwt_secret is None

    monkeypatch.setenv("JWT_JWKS_URL", "")
    with pytest.raises(SystemExit, match="JWT_SECRET"):
        GatewaySettings.from_env()


def test_without_a_secret_minting_says_the_provider_issues_the_tokens(provider):
    with pytest.raises(ValueError, match="JWT_SECRET"):
        authority_for(provider.url).mint("ops", ["admin"])


def test_the_token_command_refuses_a_lifetime_the_gateway_would_refuse(monkeypatch, capsys):
    from gateway import token

    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.delenv("JWT_JWKS_URL", raising=False)
    with pytest.raises(SystemExit):
        token.main(["--role", "admin", "--ttl", str(CENTURY)])
    assert "JWT_MAX_LIFETIME_SECONDS" in capsys.readouterr().err
