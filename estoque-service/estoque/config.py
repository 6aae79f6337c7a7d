from pydantic import Field
from pydantic_settings import SettingsConfigDict

from estoque.telemetry import LOW_STOCK_THRESHOLD
from veloz.core.settings import DatabaseSettings


class EstoqueSettings(DatabaseSettings):
    # Settings are built by name in code; the environment keeps DEFAULT_HOLD_SECONDS.
    model_config = SettingsConfigDict(populate_by_name=True)

    # How long a reservation lives when the request gives no ttl_seconds.
    reservation_ttl_seconds: int = Field(default=900, ge=1, le=86400,
                                         validation_alias="default_hold_seconds")
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    sweep_batch_size: int = Field(default=100, ge=1)
    # Items with this many units or fewer still for sale count as low on stock (a gauge).
    low_stock_threshold: int = Field(default=LOW_STOCK_THRESHOLD, ge=0)
