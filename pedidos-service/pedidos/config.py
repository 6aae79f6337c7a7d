from pydantic import Field

from veloz.core.settings import DatabaseSettings


class PedidosSettings(DatabaseSettings):
    """Where the saga's participants live, how long to wait for them and when to recover."""

    estoque_url: str = Field(description="Base URL of estoque-service (ESTOQUE_URL)")
    pagamentos_url: str = Field(description="Base URL of pagamentos-service (PAGAMENTOS_URL)")
    upstream_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    upstream_read_timeout_seconds: float = Field(default=5.0, gt=0)
    upstream_retries: int = Field(default=2, ge=0, le=10)
    upstream_backoff_seconds: float = Field(default=0.2, ge=0)
    upstream_connect_budget_seconds: float = Field(default=2.0, ge=0, le=30)
    reservation_ttl_seconds: int = Field(default=900, ge=1, le=86400)
    recovery_grace_seconds: float = Field(default=30.0, ge=0)
    recovery_interval_seconds: float = Field(default=5.0, gt=0)
    recovery_batch_size: int = Field(default=50, ge=1)
    # Reconciliation (run by the recovery worker): how often, and how long a payment or a paid
    # order may disagree before it counts (longer than a saga plus recovery take to settle).
    reconcile_interval_seconds: float = Field(default=60.0, gt=0)
    reconcile_grace_seconds: float = Field(default=300.0, ge=0)
