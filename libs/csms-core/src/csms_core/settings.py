"""Settings shared by every component (env prefix ``CSMS_``).

Nothing here connects anywhere: settings are read, checked and handed to the
lifespan of a component, which opens its clients.
"""

from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class CommonSettings(BaseSettings):
    """What every component reads. Missing Kafka/Redis means the embedded bus and router."""

    model_config = SettingsConfigDict(env_prefix="CSMS_", extra="ignore")

    environment: Environment = Environment.PRODUCTION
    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    kafka_partitions: int = 12
    kafka_replication_factor: int = 1
    # Prepended to every topic name (a namespace on a shared cluster); empty by default.
    kafka_topic_prefix: str = ""
    database_url: str = "sqlite+aiosqlite:///./csms.db"
    log_level: str = "INFO"
    # JSON lines (true) or readable lines (false); unset: JSON unless stderr is a terminal.
    log_json: bool | None = None
    # OCPP-J calls a service sends wait this long for the station's answer.
    command_timeout_s: float = 30.0
    # Stations whose events a consumer handles at once (one station's always in order);
    # SQLite takes one writer at a time, so there it is always 1 (``consumer_lanes``).
    consumer_concurrency: int = Field(default=16, ge=1, le=256)
    # The batched consumer (csms_core.bus.batching): records per poll, per transaction,
    # partitions applied side by side (1 on SQLite), and how long after a record whose
    # answer a station waits for its transaction may go on before it commits.
    consumer_batch_records: int = Field(default=1000, ge=1, le=10_000)
    consumer_batch_transaction: int = Field(default=500, ge=1, le=5_000)
    consumer_batch_lanes: int = Field(default=2, ge=1, le=64)
    consumer_answer_budget_ms: float = Field(default=5.0, ge=0)

    @property
    def embedded(self) -> bool:
        return self.kafka_bootstrap is None and self.redis_url is None

    @model_validator(mode="after")
    def _distributed_needs_both(self) -> Self:
        if (self.kafka_bootstrap is None) != (self.redis_url is None):
            raise ValueError(
                "set both CSMS_KAFKA_BOOTSTRAP and CSMS_REDIS_URL (distributed mode) or neither "
                "(embedded mode)"
            )
        return self
