"""The gateway's typed settings: backends, JWT verification, breakers and rate limits."""

from dataclasses import dataclass

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.breaker import BreakerPolicy
from veloz.core.settings import ServiceSettings
from veloz.net.client import ClientPolicy

_URL = r"^https?://\S+$"


class JwtSettings(ServiceSettings):
    """What verifying (and, for development, minting) a bearer token needs."""

    jwt_secret: SecretStr | None = Field(
        default=None, min_length=32,
        description="HS256 key; no default on purpose; required unless JWT_JWKS_URL is set")
    jwt_issuer: str = "pedidos-veloz"
    jwt_audience: str = "pedidos-veloz-api"
    # Production: tokens signed (RS256/ES256) by an identity provider that publishes this JWKS;
    # HMAC tokens are then refused, whatever JWT_SECRET says.
    jwt_jwks_url: str | None = Field(default=None, pattern=_URL)
    jwt_jwks_refresh_seconds: float = Field(default=300.0, gt=0)
    # An unknown kid fetches the JWKS again, at most this often (per worker).
    jwt_jwks_min_fetch_interval_seconds: float = Field(default=5.0, ge=0)
    jwt_jwks_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    # Where the roles are: a claim name, or a dotted path (realm_access.roles).
    jwt_roles_claim: str = Field(default="roles", min_length=1)
    # exp - iat may not exceed this (iat is required).
    jwt_max_lifetime_seconds: int = Field(default=86_400, gt=0)

    @field_validator("jwt_jwks_url", "jwt_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        return None if value == "" else value

    @model_validator(mode="after")
    def _some_way_to_verify(self) -> "JwtSettings":
        if self.jwt_secret is None and self.jwt_jwks_url is None:
            raise ValueError("JWT_SECRET is required (at least 32 characters) "
                             "unless JWT_JWKS_URL names an identity provider's keys")
        return self


@dataclass(frozen=True)
class BackendConfig:
    name: str
    url: str
    policy: ClientPolicy


class GatewaySettings(JwtSettings):
    estoque_url: str = Field(pattern=_URL)
    pedidos_url: str = Field(pattern=_URL)
    pagamentos_url: str = Field(pattern=_URL)

    estoque_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    estoque_read_timeout_seconds: float = Field(default=5.0, gt=0)
    # The purchase saga runs inside POST /orders, so pedidos may take longer to answer.
    pedidos_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    pedidos_read_timeout_seconds: float = Field(default=15.0, gt=0)
    pagamentos_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    pagamentos_read_timeout_seconds: float = Field(default=5.0, gt=0)
    upstream_retries: int = Field(default=1, ge=0, le=5)
    upstream_connect_budget_seconds: float = Field(default=2.0, ge=0, le=30)
    upstream_pool_size: int = Field(default=20, ge=1)

    # A backend's circuit opens when, over the last `breaker_window_seconds`, it had at least
    # `breaker_minimum_calls` calls and at least `breaker_failure_ratio` of them failed.
    breaker_failure_ratio: float = Field(default=0.5, gt=0, le=1)
    breaker_minimum_calls: int = Field(default=20, ge=1)
    breaker_window_seconds: float = Field(default=10.0, gt=0)
    # Open for this long, then probes; each failed probe doubles it, up to the maximum.
    breaker_open_seconds: float = Field(default=1.0, gt=0)
    breaker_max_open_seconds: float = Field(default=30.0, gt=0)
    breaker_half_open_calls: int = Field(default=3, ge=1, le=100)
    backend_check_timeout_seconds: float = Field(default=1.0, gt=0)
    openapi_cache_seconds: float = Field(default=60.0, ge=0)

    rate_limit_default: str = "300/minute"
    rate_limit_anonymous: str = "120/minute"
    ratelimit_storage_uri: str = "memory://"
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5)

    @field_validator("rate_limit_default", "rate_limit_anonymous")
    @classmethod
    def _is_a_rate_limit(cls, value: str) -> str:
        parse_many(value)
        return value

    @model_validator(mode="after")
    def _backoff_starts_below_its_cap(self) -> "GatewaySettings":
        if self.breaker_max_open_seconds < self.breaker_open_seconds:
            raise ValueError("BREAKER_MAX_OPEN_SECONDS must be >= BREAKER_OPEN_SECONDS")
        return self

    def breaker_policy(self) -> BreakerPolicy:
        return BreakerPolicy(
            failure_ratio=self.breaker_failure_ratio, minimum_calls=self.breaker_minimum_calls,
            window_seconds=self.breaker_window_seconds, open_seconds=self.breaker_open_seconds,
            max_open_seconds=self.breaker_max_open_seconds,
            half_open_calls=self.breaker_half_open_calls)

    def backends(self) -> list[BackendConfig]:
        return [
            self._backend("pedidos", self.pedidos_url, self.pedidos_connect_timeout_seconds,
                          self.pedidos_read_timeout_seconds),
            self._backend("pagamentos", self.pagamentos_url,
                          self.pagamentos_connect_timeout_seconds,
                          self.pagamentos_read_timeout_seconds),
            self._backend("estoque", self.estoque_url, self.estoque_connect_timeout_seconds,
                          self.estoque_read_timeout_seconds),
        ]

    def _backend(self, name: str, url: str, connect: float, read: float) -> BackendConfig:
        policy = ClientPolicy(connect_timeout=connect, read_timeout=read,
                              retries=self.upstream_retries, backoff_seconds=0.1,
                              pool_size=self.upstream_pool_size, retry_statuses=False,
                              connect_budget_seconds=self.upstream_connect_budget_seconds)
        return BackendConfig(name, url, policy)
