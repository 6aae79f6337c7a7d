from pydantic import Field

from estoque.telemetry import LOW_STOCK_THRESHOLD
from veloz.core.settings import DatabaseSettings


class EstoqueSettings(DatabaseSettings):
    default_hold_seconds: int = Field(default=900, ge=1, le=86400)
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    sweep_batch_size: int = Field(default=100, ge=1)
    # Items with this many units or fewer still for sale count as low on stock (a gauge).
    low_stock_threshold: int = Field(default=LOW_STOCK_THRESHOLD, ge=0)
