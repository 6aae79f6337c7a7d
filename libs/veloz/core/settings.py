"""Typed settings read from the environment once, failing fast on bad or missing values."""

import sys

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service needs. Subclasses add their own fields."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024

    @classmethod
    def from_env(cls, **overrides):
        """Build from the environment; a missing or invalid value stops the process."""
        try:
            return cls(**overrides)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
            )
            sys.exit(f"configuration error ({cls.__name__}): {problems}")


class DatabaseSettings(ServiceSettings):
    """What a service that owns a database needs on top (the gateway has none)."""

    database_url: str = Field(description="SQLAlchemy URL of this service's own database")
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=5000, ge=0)
