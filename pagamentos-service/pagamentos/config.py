from pydantic import Field

from veloz.core.settings import DatabaseSettings


class PagamentosSettings(DatabaseSettings):
    """Fault switches for experiments are off by default, except the usual 10 % declines."""

    payment_decline_rate: float = Field(default=0.1, ge=0, le=1)
    payment_latency_ms: int = Field(default=0, ge=0, le=60_000)
    payment_failure_rate: float = Field(default=0.0, ge=0, le=1)
